"""Ids, pseudonyms and settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broker.ids import id_time, new_id, new_id_at
from broker.pseudonym import Pseudonymizer
from broker.settings import Settings


def test_ids_are_version_7_and_sort_by_time() -> None:
    ids = [new_id() for _ in range(1000)]
    assert all(i.version == 7 for i in ids)
    assert len(set(ids)) == 1000
    assert ids == sorted(ids)  # creation order, even within one millisecond
    times = [id_time(i) for i in ids]
    assert times == sorted(times)
    assert abs(id_time(ids[0]) - datetime.now(UTC)) < timedelta(seconds=5)
    value, at = new_id_at()
    assert id_time(value) == at


def test_pseudonyms_are_stable_per_key_and_hide_the_value() -> None:
    one = Pseudonymizer(b"k" * 32)
    two = Pseudonymizer(b"j" * 32)
    digest = one.digest("1.2.250.1.213.1.4.8", "277076322082910")
    assert digest == one.digest("1.2.250.1.213.1.4.8", "277076322082910")
    assert digest != two.digest("1.2.250.1.213.1.4.8", "277076322082910")
    assert "277076322082910" not in digest and len(digest) == 32
    with pytest.raises(ValueError, match="16 bytes"):
        Pseudonymizer(b"short")


def test_settings_read_the_environment_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREBROKER_DATABASE_URL", "postgresql://u:secret@db:5432/x")
    monkeypatch.setenv("CAREBROKER_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("CAREBROKER_MLLP__PORT", "6661")
    settings = Settings()
    assert settings.database_dsn() == "postgresql://u:secret@db:5432/x"
    assert "u:secret@" not in repr(settings)
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.mllp.port == 6661
