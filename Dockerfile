# Sunrank server image: `sunrank serve` on :8000, data (SQLite file, learner
# checkpoints) in the /data volume, configuration only through SUNRANK_* variables.

# ---- build: a virtualenv with Sunrank and its runtime dependencies
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# PyICU (username look-alike checks) builds against the system ICU; python3-dev
# brings the C headers where the base's Python is Debian's (the official image's
# own /usr/local Python has them already, the package is then only unused).
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ pkg-config libicu-dev python3-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
COPY pyproject.toml README.md /src/
COPY app /src/app
RUN /opt/venv/bin/pip install /src \
 && find /opt/venv -name __pycache__ -type d -prune -exec rm -rf {} + \
 && find /opt/venv -path '*/site-packages/*/tests' -type d -prune -exec rm -rf {} +

# ---- GraphiQL's browser assets (app/graphiql.py): `npm ci` from the npm registry,
# checked against package-lock.json's integrity hashes; only the files the page loads
# (app.graphiql.VENDOR) and their licences go on. Any Debian base with npm will do.
FROM python:3.11-slim AS graphiql
RUN apt-get update \
 && apt-get install -y --no-install-recommends npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json /src/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && mkdir -p /opt/graphiql && cd node_modules \
 && cp --parents -t /opt/graphiql \
      react/umd/react.production.min.js react-dom/umd/react-dom.production.min.js \
      graphiql/graphiql.min.js graphiql/graphiql.min.css \
      @graphiql/plugin-explorer/dist/index.umd.js @graphiql/plugin-explorer/dist/style.css \
      react/LICENSE react-dom/LICENSE graphiql/LICENSE @graphiql/plugin-explorer/package.json

# ---- runtime
FROM python:3.11-slim
ARG UID=10001
# The ICU runtime PyICU was built against: the one libicuNN of this Debian release
# (libicu72 on 12, libicu76 on 13), the same base as the build stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      $(apt-cache search --names-only '^libicu[0-9]+$' | cut -d' ' -f1) \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid "$UID" --home-dir /data --shell /usr/sbin/nologin sunrank \
 && mkdir -p /data /opt/sunrank \
 && chown sunrank /data
COPY --from=build /opt/venv /opt/venv
COPY data/tournesol /opt/sunrank/demo
COPY --from=graphiql /opt/graphiql /opt/sunrank/graphiql
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    SUNRANK_DATA_DIR=/data \
    SUNRANK_HOST=0.0.0.0 \
    SUNRANK_PORT=8000 \
    SUNRANK_LOG_FORMAT=json \
    SUNRANK_DEMO_DATASET=/opt/sunrank/demo/tiny_tournesol_2024-01 \
    SUNRANK_GRAPHIQL_ASSETS=/opt/sunrank/graphiql
USER sunrank
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SUNRANK_PORT', '8000'), timeout=4)"]
# Exec form: SIGTERM reaches sunrank directly (graceful stop: drain, checkpoint, exit 0).
CMD ["sunrank", "serve"]
