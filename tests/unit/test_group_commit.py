"""The group commit: one flush for what queued meanwhile, results in order, failures to all."""

from __future__ import annotations

import asyncio

import pytest

from adapters.hl7v2.commit import GroupCommit
from broker.errors import StoreUnavailableError
from broker.store.messages import with_payload
from tests.integration.test_store import envelope


async def test_concurrent_submits_share_flushes_and_get_their_own_results() -> None:
    flushed: list[list[int]] = []

    async def flush(items: list[int]) -> list[int]:
        flushed.append(items)
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    commit: GroupCommit[int, int] = GroupCommit(flush, max_items=50)
    commit.start()
    results = await asyncio.gather(*(commit.submit([i, i + 1000]) for i in range(40)))
    await commit.stop()
    assert results == [[i * 10, (i + 1000) * 10] for i in range(40)]
    assert len(flushed) < 40  # shared
    assert all(len(group) <= 50 for group in flushed)
    assert [i for group in flushed for i in group] == [x for i in range(40) for x in (i, i + 1000)]


async def test_a_failed_flush_fails_each_of_its_callers_and_the_next_flush_works() -> None:
    calls = 0

    async def flush(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreUnavailableError("down")
        return items

    commit: GroupCommit[str, str] = GroupCommit(flush)
    commit.start()
    with pytest.raises(StoreUnavailableError):
        await commit.submit(["a"])
    assert await commit.submit(["b"]) == ["b"]
    await commit.stop()


def test_envelope_with_payload_equals_a_second_serialisation() -> None:
    for size in (0, 1, 2, 3, 250, 4099):
        env = envelope("W1").model_copy(
            update={"payload": bytes(range(256)) * (size // 256) + b"\xfb\xff" * (size % 7)}
        )
        view = env.model_dump_json(exclude={"payload"})
        assert with_payload(view, env.payload) == env.model_dump_json().encode()
