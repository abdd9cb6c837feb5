"""Fuzzing the edges that read untrusted bytes: the ER7 reader as ingress uses it, MLLP framing.

In the suite each property runs hypothesis's default 100 examples (a few
seconds in all). For a long run, the ``fuzz`` profile::

    .venv/bin/pytest tests/fuzz -p no:cacheprovider --hypothesis-profile=fuzz

runs 20,000 examples per property (about 10 minutes on these machines);
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

settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def corpus(kind: str) -> list[Path]:
    """Return the corpus files of one target (``er7``, ``mllp``), sorted."""
    return sorted((CORPUS / kind).iterdir())
