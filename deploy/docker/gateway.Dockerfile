# syntax=docker/dockerfile:1
# TaskQueue gateway (Flask API under Granian, `python -m gateway`): shared/ + services/gateway only.
# Build from the repository root (the context is filtered by /.dockerignore):
#   docker build -f deploy/docker/gateway.Dockerfile -t taskqueue/gateway .
# Targets: (default, last) the service image | migrate (`python -m shared.migrate`, then exits)
#          | dev (Tilt: package directories writable by the app user so live_update can sync them)

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# ---- build: a virtualenv with the pinned dependencies, shared/ and this one service
FROM base AS build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY deploy/local/constraints.txt /src/constraints.txt
COPY shared /src/shared
COPY services/gateway /src/services/gateway
RUN pip install --no-cache-dir -c /src/constraints.txt /src/shared /src/services/gateway \
    && pip check

# ---- runtime: no compilers, no sources, no pip cache; runs as an unprivileged user
FROM base AS runtime
RUN groupadd --system --gid 10001 taskqueue \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin taskqueue
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    GATEWAY_BIND=0.0.0.0:8000
WORKDIR /app
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# /healthz = process alive (readiness, /readyz, also checks Postgres and Redis).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('GATEWAY_BIND', ':8000').rsplit(':', 1)[1]; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % port, timeout=4)"]
# GATEWAY_WORKERS processes x GATEWAY_THREADS threads. SIGTERM = stop accepting, finish in-flight
# requests (GRACEFUL_TIMEOUT_S 30 s in gateway/__main__.py), then exit.
ENTRYPOINT ["python", "-m", "gateway"]

# ---- migrate: same image contents, applies Alembic migrations and exits
FROM runtime AS migrate
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m", "shared.migrate"]

# ---- dev: for Tilt (never deployed outside a dev cluster): live_update syncs the sources into
#      site-packages and touches /app/.restart-proc, so those paths belong to the app user
FROM runtime AS dev
USER 0:0
RUN chown -R 10001:10001 /app /opt/venv/lib/python3.11/site-packages/gateway \
        /opt/venv/lib/python3.11/site-packages/shared
USER 10001:10001

# ---- the service image (default target)
FROM runtime AS gateway
