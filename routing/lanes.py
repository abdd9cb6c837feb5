"""Ordering lanes (design invariant 4): which deliveries keep their order, and who owns them.

A delivery's lane is (recipient, patient ordering key), or the recipient
alone for a partner with ``ordering: strict``; its partition of
``care.deliveries.requested.v1`` is a stable hash of the lane, so the
delivery instance that owns that partition owns the lane. The router places
message deliveries with these, and so does ``routing/app_ack.py`` for the
application ACK owed to a sender (it travels in the sender's lane for that
patient, after what was accepted before it).
"""

from __future__ import annotations

import zlib

from broker.directory import Partner


def lane_of(partner: Partner, ordering_key: str) -> str:
    """Return the ordering lane of a delivery: recipient + patient, or the recipient (strict)."""
    return partner.id if partner.ordering == "strict" else f"{partner.id}/{ordering_key}"


def partition_of(lane: str, partitions: int) -> int:
    """Return the partition of ``care.deliveries.requested.v1`` that owns ``lane``."""
    return zlib.crc32(lane.encode()) % partitions
