"""The feed's decisions per message: which stream, withheld and why, what each record carries.

The Kafka and PostgreSQL sides are stand-ins here (what was produced, what
was audited); tests/integration/routing/test_feed.py runs the role against
tansu and PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.hl7v2.er7 import Message
from adapters.translate.research import PSEUDONYM_SYSTEM
from adapters.translate.settings import FeedSettings
from broker import kafka
from broker.directory import Directory, DirectoryFile
from broker.errors import MessageError
from broker.events import AuditEvent
from routing import render
from routing.feed import Feed, pseudonymizer, streams_of
from tests.messages import ORU, REF, envelope, variant


class Produced:
    """What the feed handed to Kafka, placed as a broker would (offsets per partition)."""

    def __init__(self) -> None:
        self.records: list[kafka.Record] = []

    async def publish_placed(self, records: list[kafka.Record]) -> list[tuple[int, int]]:
        start = len(self.records)
        self.records += records
        return [(0, start + i) for i in range(len(records))]


class Store:
    def __init__(self, opposed: set[str] | None = None) -> None:
        self.opposed_digests = opposed or set()
        self.events: list[AuditEvent] = []

    async def opposed(self, digests: Any) -> set[str]:
        return self.opposed_digests & set(digests)

    async def record(self, events: list[AuditEvent]) -> None:
        self.events += events


DIRECTORY = Directory(
    DirectoryFile.model_validate(
        {
            "partners": [
                {
                    "id": "labo-sud",
                    "name": "Labo Sud",
                    "kind": "lab",
                    "facilities": ["LABO-SUD"],
                    "feed": {"canonical": ["ORU^*"], "research": ["ORU^R01"]},
                },
                {
                    "id": "cabinet-dupont",
                    "name": "Cabinet Dupont",
                    "kind": "gp",
                    "facilities": ["CAB-DUPONT"],
                },
            ]
        }
    ),
    "test",
)


def feed(store: Store, produced: Produced) -> Feed:
    return Feed(
        store,  # type: ignore[arg-type]
        produced,  # type: ignore[arg-type]
        pseudonymizer(FeedSettings(), b"research-key-for-the-unit-tests"),
        topic_prefix="t.",
    )


def test_streams_follow_the_senders_patterns() -> None:
    lab = DIRECTORY.partner("labo-sud")
    assert streams_of(lab, "ORU^R01") == ("canonical", "research")
    assert streams_of(lab, "ORU^R30") == ("canonical",)
    assert streams_of(lab, "ADT^A01") == ()
    assert streams_of(DIRECTORY.partner("cabinet-dupont"), "REF^I12") == ()
    assert streams_of(None, "ORU^R01") == ()


async def test_records_are_keyed_and_audited_where_they_landed() -> None:
    store, produced = Store(), Produced()
    first, second = envelope(ORU), envelope(variant(ORU, "C-2"))
    stats = await feed(store, produced).publish(
        [first, envelope(REF, "cabinet-dupont"), second], DIRECTORY
    )
    assert stats.published == {"canonical": 2, "research": 2} and stats.not_enabled == 1
    assert [r.topic for r in produced.records] == [
        "t.care.fhir.canonical.v1",
        "t.care.fhir.research.v1",
    ] * 2
    canonical, research = produced.records[:2]
    assert canonical.key == first.ordering_key.encode()
    headers = dict(canonical.headers or [])
    assert headers["message-id"] == str(first.message_id).encode()
    bundle = json.loads(canonical.value)
    assert bundle["identifier"]["value"] == f"urn:uuid:{first.message_id}"
    record = json.loads(research.value)
    assert research.key == record["identifier"]["value"].encode()
    assert record["identifier"]["system"] == PSEUDONYM_SYSTEM
    assert "message-id" not in dict(research.headers or [])
    # The same patient: the same research key, in order.
    assert produced.records[3].key == research.key
    assert [e.message_id for e in store.events] == [first.message_id, second.message_id]
    placed = [(r["topic"], r["offset"]) for e in store.events for r in e.detail["records"]]
    assert placed == [(r.topic, i) for i, r in enumerate(produced.records)]
    assert {e.kind for e in store.events} == {"published"}


async def test_an_opposed_patient_is_withheld_from_every_stream() -> None:
    opposed = envelope(ORU)
    store, produced = Store({opposed.patient_keys[0].digest}), Produced()
    other = envelope(variant(ORU, "C-9", "PAT-OTHER"))
    stats = await feed(store, produced).publish([opposed, other], DIRECTORY)
    assert stats.withheld == 1
    assert {r.key for r in produced.records} >= {other.ordering_key.encode()}
    assert all(opposed.ordering_key.encode() != r.key for r in produced.records)
    (withheld,) = [e for e in store.events if e.kind == "withheld"]
    assert withheld.message_id == opposed.message_id
    assert withheld.detail == {
        "streams": ["canonical", "research"],
        "reason": "patient opposition on file",
    }


async def test_a_message_that_cannot_be_translated_is_withheld_with_the_location(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, produced = Store(), Produced()
    good, bad = envelope(variant(ORU, "C-3")), envelope(variant(ORU, "C-BAD"))
    translate = render.v2_to_fhir.convert

    def refuses(message: Message, **options: Any) -> Any:
        if message.control_id == "C-BAD":
            raise MessageError("OBX-5 is not a number", location="OBX-5")
        return translate(message, **options)

    monkeypatch.setattr(render.v2_to_fhir, "convert", refuses)
    stats = await feed(store, produced).publish([bad, good], DIRECTORY)
    assert stats.published == {"canonical": 1, "research": 1}
    headers = dict(produced.records[0].headers or [])
    assert headers["message-id"] == str(good.message_id).encode()
    (withheld,) = [e for e in store.events if e.kind == "withheld"]
    assert withheld.message_id == bad.message_id
    assert withheld.detail["reason"] == "cannot be translated at OBX-5"


async def test_a_failing_pseudonymisation_keeps_the_canonical_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, produced = Store(), Produced()
    made = feed(store, produced)

    def fails(bundle: Any, key: str) -> Any:
        raise KeyError("resource")

    monkeypatch.setattr(made.research, "transform", fails)
    stats = await made.publish([envelope(ORU)], DIRECTORY)
    assert stats.published == {"canonical": 1, "research": 0}
    (withheld,) = [e for e in store.events if e.kind == "withheld"]
    assert withheld.detail == {
        "streams": ["research"],
        "reason": "pseudonymisation failed (KeyError)",
    }


def test_feed_settings_refuse_a_short_key_and_read_lists() -> None:
    with pytest.raises(ValidationError, match="at least 16 bytes"):
        FeedSettings(research_key="short")  # type: ignore[arg-type]
    settings = FeedSettings(
        consumer_groups=" platform-a, ,platform-b", research_postal_codes_kept="34000"
    )
    assert settings.audited_groups() == ["platform-a", "platform-b"]
    assert settings.postal_codes_kept() == frozenset({"34000"})
