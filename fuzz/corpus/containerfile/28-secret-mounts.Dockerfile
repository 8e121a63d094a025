FROM node:20
WORKDIR /app
COPY package.json .npmrc* ./
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm install
RUN --mount=type=secret,id=aws,required=true \
    AWS_SHARED_CREDENTIALS_FILE=/run/secrets/aws aws s3 cp s3://bucket/file .
RUN --mount=type=secret,id=GITHUB_TOKEN,env=GITHUB_TOKEN \
    git clone https://x-access-token:${GITHUB_TOKEN}@github.com/example/private.git
