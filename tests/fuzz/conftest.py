"""Fuzzing the edges that read untrusted bytes: the ER7 reader as ingress uses it, MLLP framing.

In the suite each property runs hypothesis's default 100 examples (a few
seconds in all). For a long run, the ``fuzz`` profile::

    .venv/bin/pytest tests/fuzz -p no:cacheprovider --hypothesis-profile=fuzz

runs 20,000 examples per property (14 minutes here, on a shared 2-core machine);
``FUZZ_EXAMPLES=N`` sets another count. A failure prints the smallest input
hypothesis found: add it to ``corpus/er7/`` or ``corpus/mllp/`` under a name
that says what it found (every file there is replayed on every run, and
seeds the mutations), then fix the code.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

CORPUS = Path(__file__).parent / "corpus"
PUBLIC = Path(__file__).parent.parent / "corpus"
# Public samples (tests/corpus) the mutations start from too: a message, a batch,
# a file, custom delimiters, real lab results and a referral.
PUBLIC_SEEDS = (
    "python-hl7/sample_hl7.hl7",
    "python-hl7/sample_batch1.hl7",
    "python-hl7/sample_file1.hl7",
    "hl7apy/custom_delimiters_rsp.hl7",
    "hapi/cv.04_001_chem.hl7",
    "node-hl7-complete/ORU_R01_2.5.1_SampleTestCase1.hl7",
    "fhir-converter/REF_I12/REF-I12-01.hl7",
)

settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def corpus(kind: str) -> list[Path]:
    """Return the corpus files of one target (``er7``, ``mllp``), sorted."""
    return sorted((CORPUS / kind).iterdir())


def public_seeds() -> list[bytes]:
    """Return the public samples the ER7 mutations start from."""
    return [(PUBLIC / name).read_bytes() for name in PUBLIC_SEEDS]
