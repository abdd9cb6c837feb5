"""Group commit: many connections' messages stored in one PostgreSQL transaction.

Each MLLP connection has one message in flight (it waits for the ACK before
sending the next), so durable ingress is bounded by commits per second unless
messages from many connections share a commit. :class:`GroupCommit` queues
what callers submit and flushes it in one call of the store while the
previous flush is running: under load a flush carries everything that
arrived during the last one; when idle a message is flushed at once, so
batching adds no latency.

Flushes run one at a time. Two concurrent transactions of one process could
commit out of order, and the outbox relay would then see a later row before
an earlier one of the same patient (design invariant 4); one flusher keeps
commit order equal to arrival order.

Every caller gets its own results or the flush's exception: a failed flush
fails all its callers (one transaction: nothing of it is stored), and they
answer "resend later" (design invariant 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
        name: str = "commit",
    ) -> None:
        self._flush = flush
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.name = name
        self._queue: list[_Pending[T, R]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
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
        while self._queue:
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
            while self._queue:
                group = self._take()
                await self._flush_group(group)

    def _take(self) -> list[_Pending[T, R]]:
        group: list[_Pending[T, R]] = []
        count = size = 0
        while self._queue:
            head = self._queue[0]
            if group and (
                count + len(head.items) > self.max_items or size + head.size > self.max_bytes
            ):
                break
            group.append(self._queue.pop(0))
            count += len(head.items)
            size += head.size
        return group

    async def _flush_group(self, group: list[_Pending[T, R]]) -> None:
        items = [item for pending in group for item in pending.items]
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
