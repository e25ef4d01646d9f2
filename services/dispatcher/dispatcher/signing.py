"""The two signature schemes a webhook carries, both keyed by the task's `callback_secret`.

- `X-Taskqueue-Signature`: the reference's HMAC-SHA256 hex of the raw body (computed when the
  delivery is recorded, `shared.webhooks.hmac_signature`).
- Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), signed here at
  each send with the `standardwebhooks` package. Its secret is derived from callback_secret
  so that receivers can verify with any stock library:
  `whsec_` + base64(UTF-8 bytes of callback_secret). In Python:
  `Webhook("whsec_" + base64.b64encode(secret.encode()).decode()).verify(body, headers)`.
  `webhook-id` is the delivery id (the same on every retry, so receivers can dedupe);
  the timestamp is the time of each send, so retries and replays carry fresh ones.
Without a callback_secret neither signature is sent.
"""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from functools import lru_cache

from standardwebhooks import Webhook


def standard_secret(callback_secret: str) -> str:
    """The Standard Webhooks secret (`whsec_...`) a receiver configures for this task."""
    return "whsec_" + base64.b64encode(callback_secret.encode()).decode()


@lru_cache(maxsize=1024)
def _webhook(callback_secret: str) -> Webhook:
    return Webhook(standard_secret(callback_secret))


def standard_headers(callback_secret: str, message_id: str, body: str, now: datetime | None = None) -> dict[str, str]:
    """`webhook-timestamp` and `webhook-signature` for one send."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": _webhook(callback_secret).sign(message_id, now, body),
    }


def headers_for_send(stored: dict[str, str], delivery_id: str, body: str, callback_secret: str) -> dict[str, str]:
    """The headers of one attempt: the stored ones (ids pinned to the delivery), plus the
    Standard Webhooks signature when the task has a secret."""
    headers = dict(stored)
    headers["X-Taskqueue-Delivery-Id"] = headers["webhook-id"] = delivery_id
    if callback_secret:
        headers.update(standard_headers(callback_secret, delivery_id, body))
    return headers
