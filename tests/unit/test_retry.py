"""Backoff with jitter, dead-letter limits, and the per-endpoint circuit breaker (no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broker.directory import RetryPolicy
from routing.retry import CircuitBreaker, backoff, is_exhausted

POLICY = RetryPolicy(base_s=1, max_s=60, max_attempts=5, max_age_s=3600)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    assert [backoff(POLICY, n, rand=lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1, 2, 4]
    assert [backoff(POLICY, n, rand=lambda: 1.0) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff(POLICY, 30, rand=lambda: 1.0) == 60


def test_dead_letter_after_max_attempts_or_max_age() -> None:
    start = datetime(2026, 11, 28, tzinfo=UTC)
    assert is_exhausted(POLICY, 4, start, start + timedelta(minutes=5)) is None
    assert "5 attempts" in (is_exhausted(POLICY, 5, start, start) or "")
    assert "max_age_s" in (is_exhausted(POLICY, 1, start, start + timedelta(hours=2)) or "")


def test_circuit_opens_after_consecutive_failures_then_lets_one_probe_through() -> None:
    breaker = CircuitBreaker(failures_to_open=3, open_for_s=10)
    assert breaker.allows(0)
    assert not breaker.failed(1) and not breaker.failed(2)
    breaker.succeeded()  # a success resets the count
    assert not breaker.failed(3) and not breaker.failed(4)
    assert breaker.failed(5)  # third in a row: opens
    assert not breaker.allows(6) and not breaker.would_allow(14)
    assert breaker.would_allow(15)
    assert breaker.allows(15)  # the probe
    assert not breaker.allows(15.1)  # only one
    assert breaker.failed(16)  # the probe failed: open again
    assert not breaker.allows(20)
    assert breaker.allows(26)
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.allows(26.1) and breaker.allows(26.2)
