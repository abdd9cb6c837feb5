"""The search's statements and cursors, and how `carebroker messages search` reads its options."""

from __future__ import annotations

import argparse
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.commands.messages import parse_time, search_params
from broker.errors import ConfigError
from broker.store.search import Cursor, CursorError, Filters, build

WHEN = datetime(2026, 11, 28, 10, 15, 0, 123456, tzinfo=UTC)


@given(
    st.datetimes(timezones=st.just(UTC), min_value=datetime(2000, 1, 1)),  # noqa: DTZ001
    st.uuids(),
)
def test_a_cursor_reads_back_as_it_was_written(when: datetime, ident: uuid.UUID) -> None:
    cursor = Cursor(when, ident)
    text = cursor.encode()
    assert Cursor.decode(text) == cursor
    assert text.isascii() and "=" not in text and "/" not in text and "+" not in text


@pytest.mark.parametrize(
    "text",
    ["", "not a cursor", "bm90IGEgY3Vyc29y", Cursor(WHEN, uuid.UUID(int=1)).encode()[:-3] + "!!!"],
)
def test_a_cursor_not_handed_out_is_refused(text: str) -> None:
    with pytest.raises(CursorError, match="pass the `next` value"):
        Cursor.decode(text)


def test_a_cursor_without_a_time_zone_is_refused() -> None:
    naive = Cursor(WHEN.replace(tzinfo=None), uuid.uuid4()).encode()
    with pytest.raises(CursorError):
        Cursor.decode(naive)


def test_values_are_arguments_never_statement_text() -> None:
    nasty = "x'; DROP TABLE messages; --"
    filters = Filters(
        control_id=nasty, sender=nasty, message_type=nasty, status=nasty, patient_digest=nasty
    )
    query = build(filters, 10, Cursor(WHEN, uuid.uuid4()))
    assert nasty not in query.sql and "DROP" not in query.sql
    assert query.args.count(nasty) == 5
    assert query.args[-1] == 11  # one more than a page: tells whether another follows


def test_the_most_selective_index_drives() -> None:
    by_recipient = build(Filters(recipient="cabinet-dupont", sender="labo-sud"), 100)
    assert by_recipient.sql.startswith("SELECT m.* FROM deliveries d CROSS JOIN LATERAL")
    assert "ORDER BY d.message_received_at DESC, d.message_id DESC" in by_recipient.sql
    # Dead letters are few: read in order from their own index, each message once.
    dead = build(Filters(delivery_status="dead"), 100)
    assert dead.sql.startswith("SELECT DISTINCT ON (d.message_received_at, d.message_id) m.*")
    # Most deliveries are delivered: that is checked message by message.
    delivered = build(Filters(delivery_status="delivered"), 100)
    assert "FROM messages m WHERE EXISTS (SELECT 1 FROM deliveries" in delivered.sql
    # A control id pins its message: the recipient is then only checked.
    pinned = build(Filters(recipient="cabinet-dupont", control_id="LS-1"), 100)
    assert pinned.sql.startswith("SELECT m.id") and "EXISTS (SELECT 1 FROM deliveries" in pinned.sql
    # A patient's matches come from the GIN index, collected before the sort.
    patient = build(Filters(patient_digest="ab" * 16), 100)
    assert "patient_digests @> ARRAY[$1::text]" in patient.sql and " OFFSET 0) m" in patient.sql
    plain = build(Filters(), 100)
    assert plain.sql == (
        "SELECT m.id, m.received_at, m.sender, m.control_id, m.message_type, m.status, m.reason"
        " FROM messages m ORDER BY m.received_at DESC, m.id DESC LIMIT $1"
    )


def test_a_cursor_is_stated_for_the_indexes_and_the_partitions() -> None:
    query = build(Filters(sender="labo-sud"), 100, Cursor(WHEN, uuid.uuid4()))
    assert "m.received_at <= $2 AND (m.received_at, m.id) < ($2, $3)" in query.sql


@pytest.mark.parametrize("limit", [0, 1001])
def test_the_page_size_is_bounded(limit: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 1000"):
        build(Filters(), limit)


def test_filters_name_what_was_given_not_the_values() -> None:
    assert Filters(sender="x", patient_digest="y").given() == ["sender", "patient_digest"]


# --- carebroker messages search ----------------------------------------------------------


def _args(**given: str | None) -> argparse.Namespace:
    names = ("id", "control_id", "sender", "recipient", "message_type", "status")
    options = dict.fromkeys((*names, "delivery_status", "since", "until", "patient", "cursor"))
    return argparse.Namespace(**{**options, **given})


def test_ages_and_iso_times_become_instants() -> None:
    assert parse_time("2h", "since", now=WHEN) == WHEN - timedelta(hours=2)
    assert parse_time("30m", "since", now=WHEN) == WHEN - timedelta(minutes=30)
    assert parse_time("7d", "since", now=WHEN) == WHEN - timedelta(days=7)
    assert parse_time("2026-11-28T10:00:00+01:00", "until") == datetime(
        2026, 11, 28, 9, 0, tzinfo=UTC
    )
    assert parse_time("2026-11-28T10:00:00", "until").tzinfo is not None  # local time
    with pytest.raises(ConfigError, match="--since: 'yesterday' is neither"):
        parse_time("yesterday", "since")


def test_options_become_the_apis_parameters() -> None:
    params = search_params(
        _args(control_id="LS-1", message_type="ORU^R01", since="1h", patient="1.2.3|ABC-1"),
        now=WHEN,
    )
    assert params == {
        "control_id": "LS-1",
        "message_type": "ORU^R01",
        "since": (WHEN - timedelta(hours=1)).isoformat(),
        "patient_authority": "1.2.3",
        "patient_id": "ABC-1",
    }


@pytest.mark.parametrize("patient", ["ABC-1", "|ABC-1", "1.2.3|", "1.2.3| "])
def test_a_patient_needs_an_authority_and_a_value(patient: str) -> None:
    with pytest.raises(ConfigError, match=re.escape("--patient takes AUTHORITY|ID")):
        search_params(_args(patient=patient))
