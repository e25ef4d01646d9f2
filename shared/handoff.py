"""What every producer does after committing transitions: publish the events, send the messages.

A Redis failure here loses nothing: the rows are committed, and the scheduler re-sends
queued tasks whose message is missing and relays unpublished events.
"""
from __future__ import annotations

import logging
from typing import Iterable

from . import broker as task_broker
from .events import EventPublisher, from_transition
from .statuses import QUEUED

log = logging.getLogger(__name__)


def after_commit(publisher: EventPublisher, broker: task_broker.TaskBroker, rows: Iterable) -> None:
    rows = list(rows)
    publisher.publish(from_transition(r) for r in rows)
    for row in rows:
        if row.status == QUEUED:
            try:
                task_broker.enqueue_task(broker, row.id, row.queue)
            except Exception:  # noqa: BLE001 - recovered by the scheduler's lost-message sweep
                log.warning("enqueue failed; the scheduler will re-send", extra={"task_id": str(row.id)})
