"""Group commit: many connections' messages stored in one PostgreSQL transaction.

Each MLLP connection has one message in flight (it waits for the ACK before
sending the next), so durable ingress is bounded by commits per second unless
messages from many connections share a commit. :class:`GroupCommit` queues
what callers submit and flushes it in one call of the store while the
previous flush is running: under load a flush carries everything that
arrived during the last one; when idle a message is flushed at once, so
batching adds no latency.

Up to ``concurrency`` flushes run at once, so that one commit's round trips
and WAL flush overlap the next one's. This cannot reorder what a sender
ordered: a connection has one message in flight (it waits for the ACK, which
waits for the commit), and a batch frame is one submit, hence one
transaction. Two flushes in flight only ever hold messages that were in
flight together on different connections, whose relative order no sender
defined. ``concurrency=1`` commits strictly in arrival order.

Every caller gets its own results or the flush's exception: a failed flush
fails all its callers (one transaction: nothing of it is stored), and they
answer "resend later" (design invariant 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Pending(Generic[T, R]):
    items: Sequence[T]
    size: int
    done: asyncio.Future[list[R]]


class GroupCommit(Generic[T, R]):
    """Queue items, flush them in groups with ``flush(items) -> results`` (same order)."""

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[list[R]]],
        *,
        max_items: int = 500,
        max_bytes: int = 64 * 1024 * 1024,
        concurrency: int = 1,
        linger_s: float = 0.0,
        name: str = "commit",
    ) -> None:
        self._flush = flush
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.concurrency = concurrency
        self.linger_s = linger_s
        self.name = name
        self._last_group = 0
        self._queue: deque[_Pending[T, R]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self.flushes = 0
        self.flushed_items = 0

    def start(self) -> None:
        """Start the flusher task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"group-commit-{self.name}")

    async def stop(self) -> None:
        """Flush what is queued, then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        while self._queue or self._flushing:
            self._wake.set()
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def submit(self, items: Sequence[T], size: int = 0) -> list[R]:
        """Queue items that must be committed together; return their results once committed.

        ``size`` (bytes) keeps a flush of multi-MB messages bounded.
        """
        if self._task is None:
            raise RuntimeError(f"{self.name} group commit is not running")
        done: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(items, size, done))
        self._wake.set()
        return await done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.linger_s and self._last_group > 1 and len(self._queue) < self.max_items:
                # Under load (the last group was shared), wait a moment for the
                # connections being answered to submit again: fewer, larger commits.
                await asyncio.sleep(self.linger_s)
            while self._queue and len(self._flushing) < self.concurrency:
                task = asyncio.create_task(self._flush_group(self._take()))
                self._flushing.add(task)
                task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._flushing.discard(task)
        self._wake.set()  # a slot is free: take what queued meanwhile

    def _take(self) -> list[_Pending[T, R]]:
        group: list[_Pending[T, R]] = []
        count = size = 0
        while self._queue:
            head = self._queue[0]
            if group and (
                count + len(head.items) > self.max_items or size + head.size > self.max_bytes
            ):
                break
            group.append(self._queue.popleft())
            count += len(head.items)
            size += head.size
        return group

    async def _flush_group(self, group: list[_Pending[T, R]]) -> None:
        items = [item for pending in group for item in pending.items]
        self._last_group = len(items)
        try:
            results = await self._flush(items)
        except asyncio.CancelledError:
            for pending in group:
                if not pending.done.done():
                    pending.done.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every caller must hear of the failure
            for pending in group:
                if not pending.done.done():
                    pending.done.set_exception(exc)
            return
        self.flushes += 1
        self.flushed_items += len(items)
        at = 0
        for pending in group:
            n = len(pending.items)
            if not pending.done.done():
                pending.done.set_result(results[at : at + n])
            at += n
