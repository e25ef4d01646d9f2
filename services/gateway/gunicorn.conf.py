"""Gunicorn settings for the gateway, sized for the machine it runs on (override by env)."""
import multiprocessing
import os
import tempfile

bind = os.environ.get("GATEWAY_BIND", "0.0.0.0:8000")
# One process per two cores, many threads: a request mostly waits on Postgres and Redis, and one
# process batches more per handoff round trip and keeps one set of pools and caches. Measured on
# 2 cores under `make run` (submit, 32 clients): 1x32 used ~12% less gateway CPU per request and
# served ~13% more than 2x8 (interleaved runs); 3x6 and 4x4 did worse still.
workers = int(os.environ.get("GATEWAY_WORKERS", max(1, multiprocessing.cpu_count() // 2)))
worker_class = "gthread"
threads = int(os.environ.get("GATEWAY_THREADS", "32"))
# Each worker gets its own listening socket and the kernel spreads connections across them;
# with one shared socket, a burst of keep-alive clients can all land on a single worker.
reuse_port = True
keepalive = 75
graceful_timeout = 30
timeout = 60
control_socket_disable = True  # one fixed path per user would be shared by every gateway on a host
accesslog = None  # the app logs requests itself as JSON when asked; access logs cost throughput

# Metrics from every worker process are aggregated through this directory.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="taskqueue-gateway-metrics-")


def child_exit(server, worker):
    from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

    GunicornInternalPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)
