FROM nginx:1.27-alpine
COPY <<EOF /etc/nginx/conf.d/default.conf
server {
    listen 8080;
    location / {
        root /usr/share/nginx/html;
    }
}
EOF
COPY --chmod=755 <<"ENTRY" /docker-entrypoint.d/40-hello.sh
#!/bin/sh
echo "hello from $HOSTNAME"
ENTRY
EXPOSE 8080
