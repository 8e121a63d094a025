FROM postgres:16
VOLUME /var/lib/postgresql/data
VOLUME ["/var/log", "/var/db"]
VOLUME /data /cache $EXTRA_VOLUME
