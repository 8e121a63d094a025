FROM httpd:2.4
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS http://localhost/ || exit 1
FROM httpd:2.4 AS nocheck
HEALTHCHECK NONE
FROM httpd:2.4 AS execcheck
HEALTHCHECK --start-interval=2s CMD ["/usr/local/bin/check", "--quiet"]
