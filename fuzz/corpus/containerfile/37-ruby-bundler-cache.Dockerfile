FROM ruby:3.3
WORKDIR /app
COPY Gemfile* ./
RUN --mount=type=cache,target=/usr/local/bundle/cache,sharing=private,uid=1000,gid=1000 \
    bundle config set --local path vendor/bundle && bundle install
