"""Time-ordered identifiers (UUID version 7, RFC 9562 §5.7).

carebroker ids sort by creation time, which keeps B-tree inserts local, lets
keyset pagination follow acceptance order, and lets a lookup by id find its
time partition (the id carries the time). Within one process, ids made in the
same millisecond stay in creation order: the 12 ``rand_a`` bits are a counter
(RFC 9562 §6.2, method 1), so acceptance order is never shuffled.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from datetime import UTC, datetime

_lock = threading.Lock()
_last_ms = 0
_counter = 0
# The random bits make ids unguessable enough and unique together with the
# time and counter; they need not be cryptographic. A generator seeded once
# from the OS spares a getrandom() system call per id (ids are made per event).
_random = random.Random(os.urandom(32))  # noqa: S311 - uniqueness, not secrecy
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def new_id() -> uuid.UUID:
    """Return a new UUIDv7, greater than every id this process made before."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _counter = ms, _random.getrandbits(8)  # leave headroom
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= counter << 64  # rand_a used as a counter
    value |= 0b10 << 62  # variant
    value |= _random.getrandbits(62)  # rand_b
    return uuid.UUID(int=value)


def id_time(value: uuid.UUID) -> datetime:
    """Return the creation time a UUIDv7 carries (millisecond precision, UTC)."""
    return datetime.fromtimestamp((value.int >> 80) / 1000, UTC)


def new_id_at() -> tuple[uuid.UUID, datetime]:
    """Return a new id and the time it carries: use both, so a lookup by id finds its partition."""
    value = new_id()
    return value, id_time(value)
