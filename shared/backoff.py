"""Exponential backoff with bounded jitter, shared by task retries and webhook retries."""
import random

MAX_BACKOFF_SECONDS = 3600.0
JITTER = 0.2  # each delay is drawn from [80%, 100%] of its nominal value


def backoff_seconds(base: float, failures: int, cap: float = MAX_BACKOFF_SECONDS) -> float:
    """Delay before the next attempt after `failures` failures (1-based): base * 2^(failures-1).

    The jitter only shortens a delay by up to 20%, so consecutive delays still grow
    (2x nominal growth beats the 20% spread) while replicas avoid retrying in lockstep.
    """
    nominal = min(cap, max(0.0, base) * (2 ** max(0, failures - 1)))
    return nominal * random.uniform(1.0 - JITTER, 1.0)
