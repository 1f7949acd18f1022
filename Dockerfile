# Image for docker-compose.yml: the service (worker, CLI and the Norce simulator) with the
# rocksdb store. Every package pyproject.toml ships is copied (a unit test checks:
# tests/unit/ops/test_image.py); it runs as a non-root user; Docker checks /ready.
FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin norce
WORKDIR /app
COPY pyproject.toml README.md ./
COPY norce_sync norce_sync
COPY streams streams
COPY agents agents
COPY norce norce
COPY norce_simulator norce_simulator
COPY config config
RUN pip install --no-cache-dir '.[rocksdb]' \
    && mkdir -p /data && chown norce:norce /data
ENV NORCE_SYNC_CONFIG_FILE=/app/config/example.yaml \
    NORCE_SYNC_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
USER norce
# 6066: the web server (views, metrics, webhooks, orders); 6067: the webhook intake
# processes, when NORCE_SYNC_INTAKE_PROCESSES is above 0.
EXPOSE 6066 6067
# 200 once the worker is started and reaches the broker (503 while it cannot), and, with
# NORCE_SYNC_INTAKE_PROCESSES above 0, once an intake process listens.
HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('NORCE_SYNC_WEB_PORT', '6066'), timeout=4)"]
CMD ["norce-sync", "worker", "-l", "info"]
