# Image for docker-compose.yml: the service with the rocksdb store.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams streams
COPY agents agents
COPY norce norce
COPY config config
RUN pip install --no-cache-dir '.[rocksdb]'
ENV NORCE_SYNC_CONFIG_FILE=/app/config/example.yaml
EXPOSE 6066
CMD ["norce-sync", "worker", "-l", "info"]
