FROM node:20 AS assets
WORKDIR /site
COPY . .
RUN npm ci && npm run build

FROM nginx:stable-alpine
COPY --from=assets /site/dist /usr/share/nginx/html
COPY nginx.conf /etc/nginx/nginx.conf
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
