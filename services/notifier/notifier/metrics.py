"""The notifier's Prometheus metrics (served on its ops port, 9102 by default)."""
from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("taskqueue_notifier_connections", "Open websocket connections")
MESSAGES_SENT = Counter("taskqueue_notifier_messages_sent_total", "Messages written to clients", ["kind"])
FANOUT_LAG = Histogram(
    "taskqueue_notifier_fanout_lag_seconds",
    "Event timestamp (commit) to the live message being written to a client",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SLOW_CLIENTS_CLOSED = Counter(
    "taskqueue_notifier_slow_clients_closed_total", "Connections closed with 1013 because their buffer overflowed"
)
HANDSHAKES_REFUSED = Counter("taskqueue_notifier_handshakes_refused_total", "Handshakes refused", ["status"])
STREAM_ENTRIES = Counter("taskqueue_notifier_stream_entries_total", "Entries read from the event stream")
STREAM_ERRORS = Counter("taskqueue_notifier_stream_errors_total", "Failed reads of the event stream")
