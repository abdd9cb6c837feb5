"""Strict validation of an HL7 v2 message against its structure, with hl7apy.

Only for partners that ask for it (``strict: true`` in the partner
directory): hl7apy builds a full object tree and checks it against the
message structure of MSH-9/MSH-12 (segment order, cardinality, data types),
about 70 messages/s on one core here, so it runs in a worker thread, off the
event loop and off the hot path of every other partner.

hl7apy's error texts can quote values; what leaves this module names the
segment and the kind of error only (design invariant 6).
"""

from __future__ import annotations

import re

from adapters.hl7v2.ack import AckError
from adapters.hl7v2.er7 import split_segments

_MISSING = re.compile(r"Missing required child (?:\w+\.)*(?P<seg>[A-Z][A-Z0-9]{2})\b")
_ELEMENT = re.compile(r"\b(?P<seg>[A-Z][A-Z0-9]{2})_(?P<field>\d+)\b")


def check_strict(text: str) -> AckError | None:
    """Return the first structural error of a message, or None when it validates."""
    from hl7apy import exceptions
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    normalised = "\r".join(split_segments(text))
    try:
        message = parse_message(
            normalised, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True
        )
        message.validate()
    except exceptions.UnsupportedVersion:
        return AckError(203, "version not supported by strict validation", "MSH-12")
    except exceptions.ValidationError as exc:
        return _describe(str(exc), type(exc).__name__)
    except (exceptions.HL7apyException, ValueError, KeyError, IndexError, TypeError) as exc:
        # hl7apy raises plain ValueError for bad data types; its text may hold values.
        return _describe(str(exc), type(exc).__name__)
    return None


def _describe(detail: str, kind: str) -> AckError:
    missing = _MISSING.search(detail)
    if missing:
        return AckError(
            100, f"strict validation: required segment {missing['seg']} missing", missing["seg"]
        )
    element = _ELEMENT.search(detail)
    if element:
        location = f"{element['seg']}-{element['field']}"
        return AckError(102, f"strict validation: {location} invalid ({kind})", location)
    return AckError(102, f"strict validation failed ({kind})", "MSH-9")
