"""One partner endpoint as the dispatcher drives it: a transport, a queue, workers, a breaker.

Workers (``concurrency`` of them: ``connections`` for MLLP, ``concurrency``
for FHIR) take heads off the endpoint's queue, send each through the
transport under a ``send <partner>`` span, and put the outcome on the
dispatcher's results queue, where one writer records outcomes in batches
(``routing/delivery.py``). The circuit breaker (``routing/retry.py``) opens
after consecutive transient failures: heads are then handed back unsent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import StatusCode

from broker import telemetry
from broker.directory import Partner, RetryPolicy
from broker.store.work import Head
from routing import app_ack
from routing.retry import CircuitBreaker
from routing.transports import Outcome, Outgoing, Transport

log = logging.getLogger(__name__)


@dataclass
class Result:
    head: Head
    outcome: Outcome | None  # None: not attempted (circuit opened meanwhile)


class Endpoint:
    """One partner endpoint: its transport, its queue, its workers, its circuit breaker.

    ``may_send`` is asked again when a worker takes a head off the queue: a head
    queued before its partition was revoked (or the process began to stop) is
    handed back unsent, since another instance may own its lane by now.
    """

    def __init__(
        self,
        partner: Partner,
        results: asyncio.Queue[Result],
        may_send: Callable[[Head], bool],
        transport: Transport,
    ) -> None:
        self.partner = partner
        self.may_send = may_send
        self.transport = transport
        self.protocol = partner.endpoint.type if partner.endpoint else "none"
        policy = partner.endpoint.retry if partner.endpoint else RetryPolicy()
        self.breaker = CircuitBreaker(policy.circuit_failures, policy.circuit_open_s)
        self.queue: asyncio.Queue[Head | None] = asyncio.Queue()
        self.results = results
        self.workers = [
            asyncio.create_task(self._work(), name=f"deliver-{partner.id}-{i}")
            for i in range(self.transport.concurrency)
        ]

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            head = await self.queue.get()
            if head is None:
                return
            if self.breaker.state == "open" or not self.may_send(head):
                await self.results.put(Result(head, None))
                continue
            item = Outgoing(
                head.id,
                head.message_id,
                head.control_id,
                head.recipient,
                head.content_type,
                head.payload,
                expect_answer=head.kind != app_ack.KIND,
            )
            with telemetry.deliver_span(
                head.recipient, self.protocol, head.trace, _span_attributes(head)
            ) as span:
                try:
                    outcome = await self.transport.send(item)
                except Exception:  # a transport bug must not kill the worker
                    # Transports turn partner failures into outcomes; anything raised
                    # here is carebroker's own fault: retry, and say so in the logs.
                    log.exception("delivery: transport failed", extra={"partner": self.partner.id})
                    outcome = Outcome("retry", "internal-error", "carebroker transport error")
                span.set_attribute("carebroker.outcome", outcome.status)
                span.set_attribute("carebroker.ack_code", outcome.ack_code)
                if outcome.status in ("retry", "failed"):
                    span.set_status(StatusCode.ERROR, outcome.ack_code)
            if outcome.endpoint_answered:
                self.breaker.succeeded()
            elif self.breaker.failed(loop.time()):
                log.warning(
                    "delivery: circuit opened",
                    extra={"partner": self.partner.id, "for_s": self.breaker.open_for_s},
                )
            await self.results.put(Result(head, outcome))

    async def retire(self) -> None:
        """Finish what is queued, then stop the workers and close the transport."""
        for _ in self.workers:
            self.queue.put_nowait(None)
        await asyncio.gather(*self.workers, return_exceptions=True)
        await self.transport.close()


def _span_attributes(head: Head) -> dict[str, Any]:
    """Return the ids of one delivery attempt for its span (never content)."""
    return {
        "messaging.message.id": str(head.message_id),
        "messaging.message.body.size": len(head.payload),
        "carebroker.delivery_id": str(head.id),
        "carebroker.control_id": head.control_id,
        "carebroker.delivery_kind": head.kind,
        "carebroker.attempt": head.attempts + 1,
    }


__all__ = ["Endpoint", "Result"]
