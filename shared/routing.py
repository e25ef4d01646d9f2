"""Priority -> Dramatiq queue routing: the one definition every service uses."""
CRITICAL, HIGH, DEFAULT, LOW = "critical", "high", "default", "low"

# Highest priority first: a worker serving several queues prefers them in this order.
QUEUES = (CRITICAL, HIGH, DEFAULT, LOW)

PRIORITY_LOW, PRIORITY_NORMAL, PRIORITY_HIGH, PRIORITY_CRITICAL = 1, 5, 10, 20

# Dramatiq's in-process priority: lower runs first among prefetched messages.
ACTOR_PRIORITY = {CRITICAL: 0, HIGH: 10, DEFAULT: 50, LOW: 100}


def queue_for_priority(priority: int) -> str:
    if priority >= PRIORITY_CRITICAL:
        return CRITICAL
    if priority >= PRIORITY_HIGH:
        return HIGH
    if priority <= PRIORITY_LOW:
        return LOW
    return DEFAULT


def actor_name(queue: str) -> str:
    """Each queue has its own actor so Dramatiq can order prefetched work by priority."""
    return f"run_task_{queue}"


def parse_queues(spec: str) -> list[str]:
    """Parse a comma-separated queue list such as "critical,high"; raises ValueError on unknown names."""
    names = [q.strip() for q in spec.split(",") if q.strip()]
    unknown = [q for q in names if q not in QUEUES]
    if unknown or not names:
        raise ValueError(f"unknown queue(s) {unknown or spec!r}; choose from {', '.join(QUEUES)}")
    return sorted(set(names), key=QUEUES.index)
