"""Routing decisions and delivery scheduling on the in-memory store: no PostgreSQL, no Kafka.

The router and the dispatcher are the production classes; only their store
(``broker.store.memory.MemoryStore``, the same interface as PostgreSQL's) and
the partners' transports (a scripted fake with the ``Transport`` interface)
are stand-ins. The integration suite runs the same logic on the real services.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import orjson
import pytest
import yaml

from broker import telemetry
from broker.directory import Directory, Partner, parse_directory
from broker.envelope import Envelope
from broker.events import AuditEvent
from broker.store.memory import MemoryStore, StoredDelivery
from broker.store.work import Claim
from routing import app_ack
from routing.delivery import Dispatcher
from routing.replay import Selection, replay
from routing.router import Router
from routing.transports import Outcome, Outgoing, Transport
from tests.conftest import wait_for
from tests.messages import DATA, ORU, envelope, variant

PARTITIONS = 4
FAST = "retry: {base_s: 0.02, max_s: 0.05, max_attempts: MAX, circuit_failures: 50}"
UNKNOWN = b"19999999999"  # a practitioner no partner has: nobody to route to


def directory(max_attempts: int = 5, strict: bool = False) -> Directory:
    """Return the example directory with fast retries (and cabinet-dupont strict if asked)."""
    text = (DATA / "partners.yaml").read_text()
    retry = FAST.replace("MAX", str(max_attempts))
    text = text.replace(
        "endpoint: {type: mllp, host: 127.0.0.1, port: 7002}",
        f"endpoint: {{type: mllp, host: 127.0.0.1, port: 7002, {retry}}}"
        + ("\n    ordering: strict" if strict else ""),
    )
    text = text.replace(
        'endpoint: {type: fhir, url: "http://127.0.0.1:7003/fhir"}',
        f'endpoint: {{type: fhir, url: "http://127.0.0.1:7003/fhir", {retry}}}',
    )
    return parse_directory(yaml.safe_load(text), "partners.yaml")


def result(control_id: str, patient: str) -> Envelope:
    """Return the envelope of a lab result about ``patient`` (to cabinet-dupont and a copy)."""
    return envelope(variant(ORU, control_id, patient))


@dataclass
class Partners:
    """Fake endpoints: every attempt is logged, and answered by a script (default: AA)."""

    sent: list[tuple[str, str]] = field(default_factory=list)  # (partner, control id)
    script: dict[tuple[str, str], list[Outcome]] = field(default_factory=dict)

    def answer(self, partner: str, control_id: str, *outcomes: Outcome) -> None:
        """Answer the next attempts of one delivery with these outcomes, then AA."""
        self.script[(partner, control_id)] = list(outcomes)

    def transport(self, partner: Partner) -> Transport:
        return _Fake(partner.id, self)

    def delivered_to(self, partner: str) -> list[str]:
        return [c for p, c in self.sent if p == partner]


class _Fake:
    concurrency = 1

    def __init__(self, partner: str, partners: Partners) -> None:
        self.partner = partner
        self.partners = partners

    async def send(self, item: Outgoing) -> Outcome:
        self.partners.sent.append((self.partner, item.control_id))
        queued = self.partners.script.get((self.partner, item.control_id))
        return queued.pop(0) if queued else Outcome("delivered", "AA")

    async def close(self) -> None:
        return None


RETRY = Outcome("retry", "AR", "partner busy")
REFUSED = Outcome("failed", "AE", "refused by the partner", b"MSH|...")


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def partners() -> Partners:
    return Partners()


def router(store: MemoryStore, found: Directory, told: list[object] | None = None) -> Router:
    return Router(
        store,
        found,
        topic_prefix="t.",
        partitions=PARTITIONS,
        on_routed=told.append if told is not None else None,
    )


@pytest.fixture
async def dispatch(
    store: MemoryStore, partners: Partners
) -> AsyncIterator[Callable[[Directory], Dispatcher]]:
    """Start a dispatcher owning every partition, on the memory store and fake partners."""
    started: list[Dispatcher] = []

    def start(found: Directory) -> Dispatcher:
        dispatcher = Dispatcher(
            store,
            lambda: found,
            acks=app_ack.Lanes("t.care.deliveries.requested.v1", PARTITIONS),
            transports=partners.transport,
        )
        dispatcher.start()
        dispatcher.assign(range(PARTITIONS))
        started.append(dispatcher)
        return dispatcher

    yield start
    for dispatcher in started:
        await dispatcher.stop(timeout=1)


def rows(store: MemoryStore, recipient: str) -> list[StoredDelivery]:
    return sorted(
        (d for d in store.tables.deliveries.values() if d.row.recipient == recipient),
        key=lambda d: d.order,
    )


def by_control_id(store: MemoryStore, recipient: str) -> dict[str, StoredDelivery]:
    return {d.control_id: d for d in rows(store, recipient)}


def events(store: MemoryStore, kind: str) -> list[str]:
    """Return the control ids of the audit events of one kind, in recording order."""
    return [e.control_id or "" for e in store.tables.events if e.kind == kind]


async def settled(store: MemoryStore, recipient: str, statuses: set[str], count: int) -> None:
    await wait_for(
        lambda: len([d for d in rows(store, recipient) if d.status in statuses]) == count,
        timeout=10,
    )


# --- routing decisions ---------------------------------------------------------------------


async def test_a_batch_is_routed_to_each_recipient_in_its_patient_lane(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without tracing (whatever an earlier test configured): one wake-up per partition.
    monkeypatch.setattr(telemetry, "is_recording", lambda: False)
    found = directory()
    a1, a2, b1 = result("R-1", "P1"), result("R-2", "P1"), result("R-3", "P2")
    raw = variant(ORU, "R-4", "P3")
    for practitioner in (b"10001234567", b"10003456789", b"10007777777"):
        raw = raw.replace(practitioner, UNKNOWN)
    nobody = envelope(raw)
    store.accept(a1, a2, b1, nobody)
    told: list[object] = []

    stats = await router(store, found, told).route([a1, a2, b1, nobody])

    assert (stats.routed, stats.unroutable, stats.deliveries) == (3, 1, 6)
    dupont = by_control_id(store, "cabinet-dupont")
    assert sorted(dupont) == ["R-1", "R-2", "R-3"]
    assert dupont["R-1"].row.lane == dupont["R-2"].row.lane == f"cabinet-dupont/{a1.ordering_key}"
    assert dupont["R-3"].row.lane != dupont["R-1"].row.lane
    assert {d.status for d in store.tables.deliveries.values()} == {"pending"}
    # The copy-to recipient reads FHIR: translated once, at routing.
    assert all(
        d.content_type.startswith("application/fhir+json") for d in rows(store, "maison-sante-nord")
    )
    assert store.tables.messages[nobody.message_id].status == "unroutable"
    assert events(store, "unroutable") == ["R-4"]
    assert sorted(events(store, "routed")) == sorted(["R-1", "R-2", "R-3"] * 2)
    # One wake-up per partition given work, naming its lanes; and the in-process hand-off.
    wake_ups = [orjson.loads(r.value) for r in store.tables.outbox]
    assert sorted(lane for w in wake_ups for lane in w["lanes"]) == sorted(
        {d.row.lane for d in store.tables.deliveries.values()}
    )
    assert len(wake_ups) == len({d.row.partition for d in store.tables.deliveries.values()})
    assert told and {lane for _, lane in told[0]} == {  # type: ignore[index]
        d.row.lane for d in store.tables.deliveries.values()
    }


async def test_a_batch_kafka_gives_again_changes_nothing(store: MemoryStore) -> None:
    found = directory()
    batch = [result("R-1", "P1"), result("R-2", "P2")]
    store.accept(*batch)
    await router(store, found).route(batch)
    before = (dict(store.tables.deliveries), list(store.tables.outbox), list(store.tables.events))

    again = await router(store, found).route(batch)

    assert (again.routed, again.skipped, again.deliveries) == (0, 2, 0)
    assert (store.tables.deliveries, store.tables.outbox, store.tables.events) == before


async def test_an_opposed_patient_is_blocked_and_nothing_about_them_is_rendered(
    store: MemoryStore,
) -> None:
    found = directory()
    opposed, other = result("R-1", "P1"), result("R-2", "P2")
    store.accept(opposed, other)
    store.oppose(opposed.patient_keys[0].digest)

    stats = await router(store, found).route([opposed, other])

    assert (stats.routed, stats.blocked) == (1, 1)
    assert store.tables.messages[opposed.message_id].status == "blocked"
    blocked = [
        d for d in store.tables.deliveries.values() if d.row.message_id == opposed.message_id
    ]
    assert {(d.status, d.payload) for d in blocked} == {("blocked", None)}
    # No wake-up names a blocked lane: nothing is to be sent there.
    lanes = {lane for r in store.tables.outbox for lane in orjson.loads(r.value)["lanes"]}
    assert not lanes & {d.row.lane for d in blocked}


async def test_a_failed_unit_of_work_leaves_the_store_as_it_was(store: MemoryStore) -> None:
    message = result("R-1", "P1")
    store.accept(message)

    async def half_done() -> None:
        async with store.transaction() as work:
            await work.messages.claim([Claim(message.message_id, message.received_at, "routed")])
            await work.audit.record([AuditEvent(kind="routed", actor="test")])
            raise RuntimeError("the store went away")

    with pytest.raises(RuntimeError):
        await half_done()
    assert store.tables.messages[message.message_id].status == "accepted"
    assert store.tables.events == []


# --- delivery scheduling ---------------------------------------------------------------------


async def test_a_retrying_patient_holds_its_own_lane_only(
    store: MemoryStore, partners: Partners, dispatch: Callable[[Directory], Dispatcher]
) -> None:
    found = directory()
    batch = [result("R-1", "P1"), result("R-2", "P1"), result("R-3", "P2")]
    store.accept(*batch)
    await router(store, found).route(batch)
    partners.answer("cabinet-dupont", "R-1", RETRY, RETRY)

    dispatch(found)
    await settled(store, "cabinet-dupont", {"delivered"}, 3)

    sent = partners.delivered_to("cabinet-dupont")
    # Order per patient: R-2 only once R-1 was delivered (its third attempt).
    assert [c for c in sent if c in ("R-1", "R-2")] == ["R-1", "R-1", "R-1", "R-2"]
    # The other patient did not wait for R-1's retries.
    assert sent.index("R-3") < len(sent) - 1 - sent[::-1].index("R-1")
    dupont = by_control_id(store, "cabinet-dupont")
    assert dupont["R-1"].attempts == 3
    assert events(store, "retried").count("R-1") == 2


async def test_retries_end_in_a_dead_letter_and_the_lane_moves_on(
    store: MemoryStore, partners: Partners, dispatch: Callable[[Directory], Dispatcher]
) -> None:
    found = directory(max_attempts=2)
    batch = [result("R-1", "P1"), result("R-2", "P1")]
    store.accept(*batch)
    await router(store, found).route(batch)
    partners.answer("cabinet-dupont", "R-1", RETRY, RETRY, RETRY)

    dispatch(found)
    await settled(store, "cabinet-dupont", {"delivered", "dead"}, 2)

    dupont = by_control_id(store, "cabinet-dupont")
    assert (dupont["R-1"].status, dupont["R-1"].attempts) == ("dead", 2)
    assert "2 attempts" in (dupont["R-1"].last_error or "")
    assert dupont["R-2"].status == "delivered"
    assert events(store, "dead_lettered") == ["R-1"]


async def test_a_refusal_is_dead_lettered_at_once_with_the_partner_answer(
    store: MemoryStore, partners: Partners, dispatch: Callable[[Directory], Dispatcher]
) -> None:
    found = directory()
    message = result("R-1", "P1")
    store.accept(message)
    await router(store, found).route([message])
    partners.answer("cabinet-dupont", "R-1", REFUSED)

    dispatch(found)
    await settled(store, "cabinet-dupont", {"failed"}, 1)

    [refused] = rows(store, "cabinet-dupont")
    assert (refused.attempts, refused.ack_code, refused.response) == (1, "AE", b"MSH|...")
    assert partners.delivered_to("cabinet-dupont") == ["R-1"]  # never retried on its own
    assert events(store, "failed") == events(store, "dead_lettered") == ["R-1"]


async def test_a_strict_partner_gets_everything_in_one_order(
    store: MemoryStore, partners: Partners, dispatch: Callable[[Directory], Dispatcher]
) -> None:
    found = directory(strict=True)
    batch = [result("R-1", "P1"), result("R-2", "P2"), result("R-3", "P3")]
    store.accept(*batch)
    await router(store, found).route(batch)
    assert {d.row.lane for d in rows(store, "cabinet-dupont")} == {"cabinet-dupont"}
    partners.answer("cabinet-dupont", "R-1", RETRY)

    dispatch(found)
    await settled(store, "cabinet-dupont", {"delivered"}, 3)

    # One lane for the whole endpoint: another patient's message waits too.
    assert partners.delivered_to("cabinet-dupont") == ["R-1", "R-1", "R-2", "R-3"]


async def test_a_replayed_dead_letter_is_sent_again_with_a_fresh_budget(
    store: MemoryStore, partners: Partners, dispatch: Callable[[Directory], Dispatcher]
) -> None:
    found = directory(max_attempts=1)
    message = result("R-1", "P1")
    store.accept(message)
    await router(store, found).route([message])
    partners.answer("cabinet-dupont", "R-1", RETRY)
    dispatch(found)
    await settled(store, "cabinet-dupont", {"dead"}, 1)

    done = await replay(
        store,
        found,
        Selection(message_id=message.message_id, reason="partner fixed"),
        actor="user:test",
        topic_prefix="t.",
    )

    assert done.deliveries == 1
    await settled(store, "cabinet-dupont", {"delivered"}, 1)
    [again] = rows(store, "cabinet-dupont")
    assert (again.attempts, again.replays) == (1, 1)
    assert partners.delivered_to("cabinet-dupont") == ["R-1", "R-1"]
    replayed = [e for e in store.tables.events if e.kind == "replayed"]
    assert [e.detail["reason"] for e in replayed] == ["partner fixed"]
    # The owning dispatcher is woken through the outbox, on the lane's partition.
    request = orjson.loads(store.tables.outbox[-1].value)
    assert uuid.UUID(request["delivery_id"]) == again.id


async def test_a_paused_partner_is_left_alone_until_resumed(
    store: MemoryStore, partners: Partners, dispatch: Callable[[Directory], Dispatcher]
) -> None:
    found = directory()
    message = result("R-1", "P1")
    store.accept(message)
    store.pause("cabinet-dupont")
    await router(store, found).route([message])

    dispatch(found)
    await settled(store, "maison-sante-nord", {"delivered"}, 1)
    assert partners.delivered_to("cabinet-dupont") == []

    store.resume("cabinet-dupont")
    await settled(store, "cabinet-dupont", {"delivered"}, 1)
