"""Structured logs: one line per event, ``key=value`` fields, ids only (design invariant 6).

Allowed fields are ids, topic/partition/offset, partner id, message type and
outcome (see ../shared/STYLE.md). Callers pass them with ``extra={...}``; this
formatter renders them after the event text. Never log a payload, a segment,
a resource or a model repr.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


class KeyValueFormatter(logging.Formatter):
    """``2026-11-28T17:00:00Z INFO broker.relay: text key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        fields = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD)
        line = f"{when} {record.levelname} {record.name}: {record.getMessage()}"
        if fields:
            line = f"{line} {fields}"
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and where, not its text: texts of third-party
            # errors can quote input values.
            exc = record.exc_info[1]
            line = f"{line} error={type(exc).__name__}"
        return line


def configure(level: str = "INFO") -> None:
    """Send carebroker's logs to stderr, one structured line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "faststream", "uvicorn", "uvicorn.error", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
