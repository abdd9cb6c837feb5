"""Which translations fhir.resources validates at run time: a sample, or every one.

fhir.resources validation costs about twice the translation itself (every
FHIR element is a pydantic model with Python-level validators), so validating
every Bundle in the router would cap translation at the validator's speed.
The test suite validates the translation of every corpus message; at run time
a share of translations is validated (the directory's
``translation.validate_sample``) and every one for a partner that asks
(``validate_fhir: true``), so a translator defect on real traffic still shows
up, as a failed delivery naming the FHIRPath.

The sample is drawn from the message id, not at random: a re-render of the
same message (replay, ``route explain``) makes the same choice.
"""

from __future__ import annotations

from hashlib import blake2b

_SCALE = 1 << 64


def should_validate(message_id: str, share: float) -> bool:
    """Tell whether the translation of ``message_id`` is in the validated ``share`` (0..1)."""
    if share >= 1.0:
        return True
    if share <= 0.0:
        return False
    draw = int.from_bytes(blake2b(message_id.encode(), digest_size=8).digest(), "big")
    return draw < share * _SCALE
