FROM alpine:3.20
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://mirrors.example.org/tool-1.2.3.tar.gz /tmp/
ADD https://example.com/keys.asc /etc/apk/keys/
ADD --chown=nobody:nobody --chmod=0644 config.tar.gz /etc/app/
ADD --unpack=false bundle.tar /opt/bundle.tar
