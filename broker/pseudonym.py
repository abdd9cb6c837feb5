"""Pseudonymous patient keys: HMAC-SHA256 of an identifier under a deployment secret.

Patient identifiers never leave the message store in clear (design invariant 6):
Kafka record keys, the envelope, metric labels and logs use these digests. The
same identifier always gives the same digest within one deployment, so routing
can keep one patient's messages in order and operators can search by patient.
"""

from __future__ import annotations

import hashlib
import hmac


class Pseudonymizer:
    """Turn (assigning authority, identifier) into a stable, non-reversible digest."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonym key must be at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "<Pseudonymizer>"

    def digest(self, authority: str, value: str) -> str:
        """Return the digest of one identifier (32 hex characters)."""
        data = f"{authority.strip().casefold()}|{value.strip()}".encode()
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:32]

    def lane(self, *parts: str) -> str:
        """Return a digest for an ordering lane made of clear ids (recipient + patient key)."""
        return hmac.new(self._key, "|".join(parts).encode(), hashlib.sha256).hexdigest()[:32]
