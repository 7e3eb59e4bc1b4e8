# Sunrank server image: `sunrank serve` on :8000, data (SQLite file, learner
# checkpoints) in the /data volume, configuration only through SUNRANK_* variables.

# ---- build: a virtualenv with Sunrank and its runtime dependencies
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
COPY pyproject.toml README.md /src/
COPY app /src/app
RUN /opt/venv/bin/pip install /src \
 && find /opt/venv -name __pycache__ -type d -prune -exec rm -rf {} + \
 && find /opt/venv -path '*/site-packages/*/tests' -type d -prune -exec rm -rf {} +

# ---- runtime
FROM python:3.11-slim
ARG UID=10001
RUN useradd --system --uid "$UID" --home-dir /data --shell /usr/sbin/nologin sunrank \
 && mkdir -p /data /opt/sunrank \
 && chown sunrank /data
COPY --from=build /opt/venv /opt/venv
COPY data/tournesol /opt/sunrank/demo
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    SUNRANK_DATA_DIR=/data \
    SUNRANK_HOST=0.0.0.0 \
    SUNRANK_PORT=8000 \
    SUNRANK_LOG_FORMAT=json \
    SUNRANK_DEMO_DATASET=/opt/sunrank/demo/tiny_tournesol_2024-01
USER sunrank
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SUNRANK_PORT', '8000'), timeout=4)"]
# Exec form: SIGTERM reaches sunrank directly (graceful stop: drain, checkpoint, exit 0).
CMD ["sunrank", "serve"]
