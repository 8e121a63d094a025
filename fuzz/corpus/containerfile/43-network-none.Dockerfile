FROM python:3.12
COPY wheels /wheels
RUN --network=none pip install --no-index --find-links=/wheels mypkg
RUN --network=host curl http://localhost:8080/health
RUN --network=default echo default
