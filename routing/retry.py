"""When to try a delivery again, when to give up, and when to stop calling an endpoint (pure).

- Backoff: exponential with "equal jitter" (half the delay fixed, half drawn
  at random), so lanes that failed together spread out instead of retrying
  in lock-step against a partner that just came back.
- Dead letter: after ``max_attempts`` attempts or ``max_age_s`` since the
  delivery was created, whichever comes first.
- Circuit breaker, one per endpoint: ``circuit_failures`` consecutive
  transient failures open it; while open nothing is sent to that endpoint
  (attempts are not spent); after ``circuit_open_s`` it lets one probe
  through (half-open); the probe's outcome closes or re-opens it.

The clock and the random source are parameters, so tests need no sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from broker.directory import RetryPolicy


def backoff(policy: RetryPolicy, attempts: int, rand: Callable[[], float] = random.random) -> float:
    """Return seconds to wait after the ``attempts``-th failed attempt (1-based)."""
    delay = min(policy.max_s, policy.base_s * 2.0 ** max(attempts - 1, 0))
    return delay / 2 + rand() * delay / 2


def is_exhausted(
    policy: RetryPolicy, attempts: int, created_at: datetime, now: datetime
) -> str | None:
    """Return why a delivery must be dead-lettered now, or None while it may still retry."""
    if attempts >= policy.max_attempts:
        return f"gave up after {attempts} attempts (max_attempts {policy.max_attempts})"
    if now - created_at >= timedelta(seconds=policy.max_age_s):
        return f"gave up after {int((now - created_at).total_seconds())} s (max_age_s)"
    return None


CircuitState = Literal["closed", "open", "half-open"]


@dataclass
class CircuitBreaker:
    """Stop calling an endpoint that keeps failing; probe it now and then (per process)."""

    failures_to_open: int
    open_for_s: float
    state: CircuitState = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = field(default=False)

    def allows(self, now: float) -> bool:
        """Tell whether an attempt may start now; in half-open state only one probe may."""
        if self.state == "closed":
            return True
        if self.state == "open" and now - self.opened_at >= self.open_for_s:
            self.state = "half-open"
            self.probing = False
        if self.state == "half-open" and not self.probing:
            self.probing = True
            return True
        return False

    def would_allow(self, now: float) -> bool:
        """Tell whether :meth:`allows` could say yes now, without claiming the probe."""
        if self.state == "closed":
            return True
        if self.state == "open":
            return now - self.opened_at >= self.open_for_s
        return not self.probing

    def succeeded(self) -> None:
        """Record a success: the endpoint answers, close the circuit."""
        self.state, self.failures, self.probing = "closed", 0, False

    def failed(self, now: float) -> bool:
        """Record a transient failure; return True when this opened the circuit."""
        self.failures += 1
        if self.state == "half-open" or self.failures >= self.failures_to_open:
            opened = self.state != "open"
            self.state, self.opened_at, self.probing = "open", now, False
            return opened
        return False
