# syntax=docker/dockerfile:1
# TaskQueue webhook dispatcher (signs, delivers, retries task callbacks):
# shared/ + services/dispatcher only.
# Build from the repository root (the context is filtered by /.dockerignore):
#   docker build -f deploy/docker/dispatcher.Dockerfile -t taskqueue/dispatcher .
# Targets: (default, last) the service image | migrate | dev (Tilt live_update)

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
COPY services/dispatcher /src/services/dispatcher
RUN pip install --no-cache-dir -c /src/constraints.txt /src/shared /src/services/dispatcher \
    && pip check

# ---- runtime: no compilers, no sources, no pip cache; runs as an unprivileged user
FROM base AS runtime
RUN groupadd --system --gid 10001 taskqueue \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin taskqueue
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    DISPATCHER_METRICS_PORT=9103
WORKDIR /app
USER 10001:10001
EXPOSE 9103
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('DISPATCHER_METRICS_PORT', '9103'), timeout=4)"]
# SIGTERM: stops reading the event stream, finishes the deliveries in flight, then exits.
ENTRYPOINT ["python", "-m", "dispatcher"]

# ---- migrate: same image contents, applies Alembic migrations and exits
FROM runtime AS migrate
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m", "shared.migrate"]
CMD []

# ---- dev: for Tilt (never deployed outside a dev cluster): live_update syncs the sources into
#      site-packages and touches /app/.restart-proc, so those paths belong to the app user
FROM runtime AS dev
USER 0:0
RUN chown -R 10001:10001 /app /opt/venv/lib/python3.11/site-packages/dispatcher \
        /opt/venv/lib/python3.11/site-packages/shared
USER 10001:10001

# ---- the service image (default target)
FROM runtime AS dispatcher
