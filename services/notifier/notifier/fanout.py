"""In-memory routing from the process's one stream reader to its connections.

The reader asks `Router.wants` about every entry and calls `Router.publish` for those it
may want; neither awaits, so one slow client can never hold up the others: each subscriber has
a bounded queue, and a subscriber whose queue is full is flagged `overflowed` (its connection
is then closed with 1013) and gets nothing more.
"""
from __future__ import annotations

import asyncio

from .messages import Entry


class Subscriber:
    """One connection's interest (an owner's tasks, or one task of that owner) and its buffer."""

    __slots__ = ("owner_id", "task_id", "queue", "overflowed")

    def __init__(self, owner_id: int, task_id: str | None, capacity: int):
        self.owner_id = owner_id
        self.task_id = task_id  # None: every task of the owner
        self.queue: asyncio.Queue[Entry] = asyncio.Queue(capacity)
        self.overflowed = asyncio.Event()

    def wants(self, entry: Entry) -> bool:
        """Ownership is checked on every event, not only at the handshake: never leak a byte."""
        return entry.owner_id == self.owner_id and (self.task_id is None or entry.task_id == self.task_id)

    def offer(self, entry: Entry) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.overflowed.set()


class Router:
    """Subscribers indexed by owner (list feeds) and by task (single-task feeds)."""

    def __init__(self) -> None:
        self._by_owner: dict[int, set[Subscriber]] = {}
        self._by_task: dict[str, set[Subscriber]] = {}
        self.size = 0

    def add(self, sub: Subscriber) -> None:
        index, key = self._slot(sub)
        index.setdefault(key, set()).add(sub)
        self.size += 1

    def remove(self, sub: Subscriber) -> None:
        index, key = self._slot(sub)
        members = index.get(key)
        if members is None or sub not in members:
            return
        members.discard(sub)
        if not members:
            del index[key]
        self.size -= 1

    def wants(self, owner_id: int, task_id: str) -> bool:
        """Whether a subscriber is indexed under this owner or task: if not, nobody here can want
        the entry, so the reader need not decode it. A match is only a candidate: `publish` still
        checks ownership (`Subscriber.wants`) on the decoded entry."""
        return owner_id in self._by_owner or task_id in self._by_task

    def publish(self, entry: Entry) -> bool:
        """Offer `entry` to every subscriber that wants it; False when none wants it (no queue grew)."""
        offered = False
        for index, key in ((self._by_owner, entry.owner_id), (self._by_task, entry.task_id)):
            for sub in index.get(key, ()):
                if sub.wants(entry):
                    sub.offer(entry)
                    offered = True
        return offered

    def _slot(self, sub: Subscriber) -> tuple[dict, object]:
        return (self._by_owner, sub.owner_id) if sub.task_id is None else (self._by_task, sub.task_id)
