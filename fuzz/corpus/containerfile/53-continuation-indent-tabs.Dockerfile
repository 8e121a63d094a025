FROM alpine
RUN	apk add --no-cache \
		bash \
		curl
	WORKDIR /x
