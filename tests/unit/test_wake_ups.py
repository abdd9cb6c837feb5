"""Wake-up records: what the router writes and what a delivery instance reads from them."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from broker.envelope import DeliveryRequest
from routing import router
from routing.delivery import lanes_named
from routing.router import _wake_ups


def request(lane: str, lanes: list[str]) -> bytes:
    return (
        DeliveryRequest(
            delivery_id=uuid.uuid4(),
            message_id=uuid.uuid4(),
            recipient="cabinet-dupont",
            lane=lane,
            lanes=lanes,
        )
        .model_dump_json()
        .encode()
    )


def rows(*spec: tuple[int, str, str]) -> list[Any]:
    return [SimpleNamespace(partition=p, lane=lane, status=status) for p, lane, status in spec]


def test_one_record_per_partition_names_every_lane_given_work_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(router.telemetry, "is_recording", lambda: False)
    batch = rows(
        (3, "a", "pending"),
        (3, "b", "pending"),
        (5, "c", "pending"),
        (3, "a", "pending"),  # a second delivery in lane a
        (3, "d", "blocked"),  # not sent: no wake-up
    )

    records = _wake_ups(batch)

    assert [(first.partition, lanes) for first, lanes in records] == [
        (3, ["a", "b"]),
        (5, ["c"]),
    ]
    named = [lanes_named(first.partition, request(first.lane, lanes)) for first, lanes in records]
    assert named == [[(3, "a"), (3, "b")], [(5, "c")]]


def test_a_record_without_lanes_names_its_own_and_an_unreadable_one_names_none() -> None:
    # Records from replay and application ACKs name their one lane.
    assert lanes_named(7, request("x", [])) == [(7, "x")]
    for value in (b"not json", b"[]", b'{"lanes": [1]}', b"{}"):
        assert lanes_named(7, value) is None  # the instance then looks at every lane


def test_with_tracing_on_each_delivery_keeps_its_record_naming_its_lane(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(router.telemetry, "is_recording", lambda: True)
    batch = rows((3, "a", "pending"), (3, "b", "pending"), (3, "d", "blocked"))

    records = _wake_ups(batch)

    named = [lanes_named(first.partition, request(first.lane, lanes)) for first, lanes in records]
    assert named == [[(3, "a")], [(3, "b")]]
