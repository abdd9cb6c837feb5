"""``carebroker asyncapi``: print the AsyncAPI document of carebroker's Kafka topics.

Generated from ``broker/topics.py`` (each topic's name, record model, key and
headers) and the consumer groups that read them, through FastStream's
AsyncAPI support, so it cannot drift from the code; ``docs/asyncapi.json``
is its committed copy and ``tests/unit/test_asyncapi.py`` fails when they
differ. Consumers of the FHIR feeds (``care.fhir.canonical.v1``,
``care.fhir.research.v1``) read the record schema, key and headers there.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from broker import topics

# Who publishes each topic, and the consumer groups of carebroker's roles reading it.
PRODUCERS = {
    topics.ACCEPTED: "relay",
    topics.DELIVERIES: "router (through the outbox and the relay)",
    topics.CANONICAL: "feed",
    topics.RESEARCH: "feed",
}
CONSUMERS: dict[topics.Topic, tuple[tuple[str, str], ...]] = {
    topics.ACCEPTED: (
        (topics.Groups.ROUTER, "router: decides the recipients, renders what each receives."),
        (topics.Groups.FEED, "feed: publishes the FHIR feeds."),
    ),
    topics.DELIVERIES: ((topics.Groups.DELIVERY, "delivery: sends to the partners."),),
}
TITLE = "carebroker Kafka topics"
DESCRIPTION = (
    "Every Kafka topic carebroker uses (names carry the deployment's `kafka_topic_prefix`), "
    "with the record each carries. `care.fhir.canonical.v1` and `care.fhir.research.v1` are "
    "for regional data platforms and research platforms to read with any Kafka client; "
    "docs/data-protection.md says what each contains and how reading them is audited."
)


def _handler(model: type[Any]) -> Any:
    """Return a handler whose parameter is ``model``: FastStream reads the schema from it."""

    async def handle(body: Any) -> None:
        """Schema only: never called."""

    handle.__annotations__ = {"body": model, "return": None}
    return handle


def document() -> dict[str, Any]:
    """Return the AsyncAPI 3.0 document of every topic."""
    broker = KafkaBroker("kafka:9092", description="The deployment's Kafka cluster.")
    for topic in topics.ALL:
        broker.publisher(
            topic.name,
            title=f"{topic.name}:publish",
            description=f"Published by {PRODUCERS[topic]}. {topic.description}",
            schema=topic.model,
        )
        for group, what in CONSUMERS.get(topic, ()):
            broker.subscriber(
                topic.name,
                group_id=group,
                title=f"{topic.name}:{group}",
                description=f"Consumer group `{group}`, {what}",
            )(_handler(topic.model))
    spec: dict[str, Any] = (
        AsyncAPI(broker, title=TITLE, version="1", description=DESCRIPTION, schema_version="3.0.0")
        .to_specification()
        .to_jsonable()
    )
    for name, operation in spec.get("operations", {}).items():
        group = name.partition(":")[2]
        if operation.get("action") == "receive":
            operation["bindings"] = {
                "kafka": {
                    "groupId": {"type": "string", "enum": [group]},
                    "bindingVersion": "0.5.0",
                }
            }
    by_name = {t.name: t for t in topics.ALL}
    for name, message in spec.get("components", {}).get("messages", {}).items():
        topic = by_name[name.partition(":")[0]]
        message.pop("correlationId", None)  # carebroker sets no correlation header
        message["bindings"] = {
            "kafka": {
                "key": {"type": "string", "description": topic.key},
                "bindingVersion": "0.5.0",
            }
        }
        if topic.headers:
            message["headers"] = {
                "type": "object",
                "properties": {
                    header: {"type": "string", "description": meaning}
                    for header, meaning in topic.headers
                },
            }
    return spec


def render() -> str:
    """Return the document as the committed file holds it."""
    return json.dumps(document(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def register(commands: Any) -> None:
    """Add ``asyncapi``."""
    parser = commands.add_parser(
        "asyncapi",
        help="print the AsyncAPI document of the Kafka topics "
        "(carebroker asyncapi > docs/asyncapi.json)",
    )
    parser.set_defaults(handler=_print)


def _print(_: argparse.Namespace) -> int:
    sys.stdout.write(render())
    return 0
