"""`notifier.stream.replay` against a real Redis: missed entries, or a gap notice, whatever the stream's state.

Each test uses a stream of its own (not `taskqueue:events`), so the running notifier never sees it.
"""
from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from notifier import stream as nstream
from notifier.messages import format_stream_id, parse_stream_id

from .nf_helpers import synthetic_event

GAP = "GAP"


@pytest.fixture
def run(store):
    """Runs `scenario(client, key)` on a fresh stream key; deletes the key afterwards."""

    def runner(scenario):
        async def main():
            client = aioredis.Redis.from_url(store.settings.redis_url)
            key = f"test:replay:{uuid.uuid4().hex}"
            try:
                return await scenario(client, key)
            finally:
                await client.delete(key)
                await client.aclose()

        return asyncio.run(main())

    return runner


async def add(client, key: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        ids.append((await client.xadd(key, synthetic_event(30_000_000 + i, owner_id=1))).decode())
    return ids


async def replayed(client, key: str, after: str, upto: str, resuming: bool = True, on_entry=None) -> list[str]:
    """What `replay` yields: stream ids, and GAP where it reports one."""
    out = []
    async for item in nstream.replay(client, key, parse_stream_id(after), parse_stream_id(upto), resuming=resuming):
        out.append(GAP if item is nstream.GAP else format_stream_id(item.sid))
        if on_entry is not None and item is not nstream.GAP:
            await on_entry(len(out))
    return out


def test_entries_still_retained_are_replayed_without_a_gap(run):
    async def scenario(client, key):
        ids = await add(client, key, 5)
        await client.xtrim(key, maxlen=4, approximate=False)  # trims ids[0], before the client's entry
        return ids, await replayed(client, key, ids[1], ids[-1])

    ids, got = run(scenario)
    assert got == ids[2:]


def test_client_at_the_newest_entry_of_an_emptied_stream_gets_a_gap(run):
    async def scenario(client, key):
        ids = await add(client, key, 3)
        await client.xtrim(key, maxlen=0, approximate=False)
        return [await replayed(client, key, after, ids[-1]) for after in ids]

    assert run(scenario) == [[GAP], [GAP], [GAP]]


def test_entries_added_after_a_trim_follow_the_gap(run):
    async def scenario(client, key):
        ids = await add(client, key, 3)
        await client.xtrim(key, maxlen=0, approximate=False)
        new = await add(client, key, 2)
        return new, await replayed(client, key, ids[-1], new[-1])

    new, got = run(scenario)
    assert got == [GAP, *new]


def test_a_client_ahead_of_this_reader_gets_a_gap_only_if_its_entry_is_gone(run):
    async def scenario(client, key):
        ids = await add(client, key, 3)
        kept = await replayed(client, key, ids[2], ids[0])  # reader position behind the client
        await client.xtrim(key, maxlen=0, approximate=False)
        gone = await replayed(client, key, ids[2], ids[0])
        return kept, gone

    assert run(scenario) == ([], [GAP])


def test_a_lost_stream_is_a_gap(run):
    async def scenario(client, key):
        ids = await add(client, key, 2)
        await client.delete(key)
        return await replayed(client, key, ids[0], ids[1])

    assert run(scenario) == [GAP]


def test_an_entry_deleted_after_the_clients_is_a_gap(run):
    async def scenario(client, key):
        ids = await add(client, key, 4)
        await client.xdel(key, ids[2])
        return ids, await replayed(client, key, ids[0], ids[-1])

    ids, got = run(scenario)
    assert got == [GAP, ids[1], ids[3]]


def test_a_trim_in_the_middle_of_a_long_replay_is_reported_before_what_is_left(run, monkeypatch):
    monkeypatch.setattr(nstream, "REPLAY_BATCH", 2)

    async def scenario(client, key):
        ids = await add(client, key, 7)

        async def trim_after_first_batch(count):
            if count == 2:  # ids[1], ids[2] handed over; ids[3], ids[4] are trimmed before the next read
                await client.xtrim(key, maxlen=2, approximate=False)

        return ids, await replayed(client, key, ids[0], ids[-1], on_entry=trim_after_first_batch)

    ids, got = run(scenario)
    assert got == [ids[1], ids[2], GAP, ids[5], ids[6]]


def test_a_fresh_connection_starts_from_a_position_that_need_not_be_an_entry(run, monkeypatch):
    monkeypatch.setattr(nstream, "REPLAY_BATCH", 2)

    async def scenario(client, key):
        ids = await add(client, key, 6)
        await client.xtrim(key, maxlen=4, approximate=False)  # the position (ids[1]) is gone: no gap
        whole = await replayed(client, key, ids[1], ids[-1], resuming=False)
        from_zero = await replayed(client, key, "0-0", ids[-1], resuming=False)
        return ids, whole, from_zero

    ids, whole, from_zero = run(scenario)
    assert whole == ids[2:] and from_zero == ids[2:]
