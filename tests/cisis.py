"""The CI-SIS examples of tests/data/cisis as bytes to send, with the edits a test needs."""

from __future__ import annotations

import base64
import re
from pathlib import Path

CISIS = Path(__file__).parent / "data" / "cisis"
EXAMPLES = tuple(sorted(p.stem for p in CISIS.glob("*.hl7")))
_PLACEHOLDER = re.compile(r"\{\{([\w.]+)\}\}")


def cda(name: str) -> bytes:
    """Return the bytes of a CDA document of the test data."""
    return (CISIS / name).read_bytes()


def example(
    name: str,
    *,
    control_id: str | None = None,
    flags: dict[str, str] | None = None,
    replace: dict[str, str] | None = None,
) -> bytes:
    """Return example ``name`` as an HL7 v2 message (CR-separated, UTF-8).

    ``flags`` sets metadata OBX values (``{"INVISIBLE_PATIENT": "Y"}``);
    ``replace`` edits the text (whole substrings) before encoding.
    """
    text = (CISIS / f"{name}.hl7").read_text(encoding="utf-8")
    text = _PLACEHOLDER.sub(lambda m: base64.b64encode(cda(m.group(1))).decode(), text)
    for flag, value in (flags or {}).items():
        text, count = re.subn(
            rf"(\|{flag}\^[^|]*\|\|)[YN](\^)", rf"\g<1>{value}\g<2>", text, count=1
        )
        assert count == 1, f"{name} has no {flag} flag"
    for old, new in (replace or {}).items():
        assert old in text, f"{name} has no {old!r}"
        text = text.replace(old, new)
    if control_id is not None:
        text = re.sub(r"^(MSH(?:\|[^|\n]*){8}\|)[^|]*", rf"\g<1>{control_id}", text, count=1)
    return text.replace("\n", "\r").encode("utf-8")
