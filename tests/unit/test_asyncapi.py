"""docs/asyncapi.json is the Kafka topics as the code defines them."""

from __future__ import annotations

from broker import topics
from broker.commands.asyncapi import document, render
from tests.conftest import REPO

COMMITTED = REPO / "docs" / "asyncapi.json"
REGENERATE = ".venv/bin/carebroker asyncapi > docs/asyncapi.json"


def test_committed_asyncapi_document_is_current() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        f"docs/asyncapi.json is out of date; regenerate it with: {REGENERATE}"
    )


def test_every_topic_is_documented_with_its_record_key_and_headers() -> None:
    spec = document()
    addresses = {c["address"] for c in spec["channels"].values()}
    assert addresses == {t.name for t in topics.ALL}
    canonical = spec["components"]["messages"]["care.fhir.canonical.v1:publish:Message"]
    assert canonical["payload"] == {"$ref": "#/components/schemas/FhirMessage"}
    assert "ordering key" in canonical["bindings"]["kafka"]["key"]["description"]
    assert {"message-id", "message-type", "sender"} <= set(canonical["headers"]["properties"])
    research = spec["components"]["messages"]["care.fhir.research.v1:publish:Message"]
    assert "message-id" not in research["headers"]["properties"]  # no link back to the source
    bundle = spec["components"]["schemas"]["FhirMessage"]
    assert {"resourceType", "type", "entry", "identifier"} <= set(bundle["properties"])
    groups = {
        o["bindings"]["kafka"]["groupId"]["enum"][0]
        for o in spec["operations"].values()
        if o["action"] == "receive"
    }
    assert groups == {topics.Groups.ROUTER, topics.Groups.DELIVERY, topics.Groups.FEED}
