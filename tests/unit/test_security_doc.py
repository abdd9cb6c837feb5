"""docs/security.md says what the code does: its sections, figures, metric names and tests."""

from __future__ import annotations

import re

from prometheus_client import generate_latest

from adapters.hl7v2 import mllp  # noqa: F401 - registers the listener's metrics
from adapters.hl7v2.settings import MllpSettings
from broker.metrics import PROCESS_REGISTRY
from tests.conftest import REPO

DOC = REPO / "docs" / "security.md"
SECTIONS = [
    "Overview",
    "MLLP listener",
    "HTTP listener",
    "Console sign-in and sessions",
    "FHIR ingress",
    "Metrics and alerts",
    "PostgreSQL",
    "Kafka",
    "Secrets",
]


def test_the_threat_model_has_its_sections() -> None:
    headings = re.findall(r"^## (.+)$", DOC.read_text(), re.MULTILINE)
    assert sorted(headings, key=SECTIONS.index) == headings, "sections out of order"
    assert set(headings) == set(SECTIONS)


def test_the_mllp_limits_table_gives_the_settings_defaults() -> None:
    rows = re.findall(r"^\| `CAREBROKER_MLLP__(\w+)` \| (\S+) \|", DOC.read_text(), re.MULTILINE)
    assert len(rows) >= 6
    defaults = MllpSettings()
    for name, shown in rows:
        value = getattr(defaults, name.lower())
        assert float(shown) == value, f"CAREBROKER_MLLP__{name}: doc says {shown}, code {value}"


def test_the_metrics_named_are_the_ones_exposed() -> None:
    named = set(re.findall(r"carebroker_mllp_\w+", DOC.read_text()))
    exposed = generate_latest(PROCESS_REGISTRY).decode()
    assert named, "the doc names the listener's metrics"
    for name in named:
        assert re.search(rf"^# TYPE {name} ", exposed, re.MULTILINE), name


def test_the_tests_it_cites_exist() -> None:
    cited = set(re.findall(r"`(tests/[\w/]+\.py)`", DOC.read_text()))
    cited |= {f"tests/e2e/{n}" for n in re.findall(r"`(test_\w+\.py)`", DOC.read_text())}
    missing = sorted(
        c
        for c in cited
        if not (REPO / c).exists() and not list((REPO / "tests").rglob(c.rsplit("/", 1)[-1]))
    )
    assert not missing, missing
