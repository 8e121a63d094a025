FROM alpine
ENV APP_HOME=/opt/app
WORKDIR $APP_HOME
WORKDIR ${APP_HOME}/src
WORKDIR relative/dir
WORKDIR /path with spaces
