"""Compare carebroker's v2 -> FHIR translation with FHIR-Converter's expected Bundles.

For every HL7 v2 sample in ``tests/corpus/fhir-converter/<TYPE>/`` that has an
``-expected.json``, translate it with carebroker, then measure per message type:

- resources: the share of the expected output's resources that carebroker
  produced too, matching by resource type and identifier values (never by the
  generated ids); a resource without identifiers matches the same-type
  resource it agrees with most;
- elements: the share of the expected output's populated elements (leaf
  ``path = value`` pairs, array positions ignored) that carebroker's matched
  resource holds with the same value. References (generated ids), narrative
  and ``meta`` are left out; times compare as instants, numbers as numbers.

FHIR-Converter is a reference point, not the definition of right (the HL7
v2-to-FHIR IG is). Where carebroker deliberately differs, the difference is
listed in ``tests/data/fhir-compare-deliberate.yaml`` with its reason, and
those elements are counted apart, not as disagreements.

Run ``python -m tests.tools.compare_fhir`` to print the table.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from adapters.hl7v2.er7 import Message
from adapters.translate.bundle import dumps, loads
from adapters.translate.v2_to_fhir import convert

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus" / "fhir-converter"
DELIBERATE = REPO / "tests" / "data" / "fhir-compare-deliberate.yaml"
_SKIPPED_KEYS = frozenset({"id", "meta", "text", "reference", "fullUrl", "div", "request"})

Leaf = tuple[str, str]


@dataclass
class Score:
    """Agreement figures for one message type (or one message)."""

    messages: int = 0
    resources: int = 0
    matched: int = 0
    elements: int = 0
    agreed: int = 0
    deliberate: int = 0
    missing_types: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, other: Score) -> None:
        """Accumulate another score into this one."""
        self.messages += other.messages
        self.resources += other.resources
        self.matched += other.matched
        self.elements += other.elements
        self.agreed += other.agreed
        self.deliberate += other.deliberate
        for name, count in other.missing_types.items():
            self.missing_types[name] += count

    @property
    def resource_share(self) -> float:
        """Return the share of expected resources matched."""
        return self.matched / self.resources if self.resources else 1.0

    @property
    def element_share(self) -> float:
        """Return the share of expected elements agreed (deliberate differences excluded)."""
        return self.agreed / self.elements if self.elements else 1.0


@dataclass(frozen=True)
class Deliberate:
    """A documented difference: expected leaves carebroker does not try to reproduce."""

    resource: str
    path: str
    path_contains: str
    value_prefix: str
    reason: str

    def covers(self, resource_type: str, leaf: Leaf) -> bool:
        """Tell whether this note explains an expected leaf."""
        if self.resource not in ("*", resource_type):
            return False
        path, value = leaf
        if self.path and not (path == self.path or path.startswith(self.path + ".")):
            return False
        if self.path_contains and self.path_contains not in path:
            return False
        return not self.value_prefix or value.startswith(self.value_prefix)


def load_deliberate(path: Path = DELIBERATE, kind: str = "") -> tuple[list[Deliberate], set[str]]:
    """Return the documented element differences and the resource types left out entirely.

    A resource exclusion may name the message types (``types``) it is about;
    ``kind`` is the type being compared (all exclusions apply when it is "").
    """
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    notes = [
        Deliberate(
            resource=item.get("resource", "*"),
            path=item.get("path", ""),
            path_contains=item.get("path_contains", ""),
            value_prefix=item.get("value_prefix", ""),
            reason=item["reason"],
        )
        for item in data.get("elements", [])
    ]
    skipped = {
        item["resource"]
        for item in data.get("resources", [])
        if not kind or not item.get("types") or kind in item["types"]
    }
    return notes, skipped


def _normalise(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, Decimal)):
        try:
            return format(Decimal(str(value)).normalize(), "f")
        except InvalidOperation:
            return str(value)
    text = str(value).strip()
    if len(text) > 19 and text[4:5] == "-" and text[10:11] == "T":
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        if moment.tzinfo is not None:
            return moment.astimezone(UTC).isoformat()
    return text


def leaves(resource: Any, prefix: str = "") -> set[Leaf]:
    """Return the populated leaf elements of a resource as (path, normalised value)."""
    found: set[Leaf] = set()
    if isinstance(resource, dict):
        for key, value in resource.items():
            if key in _SKIPPED_KEYS or (not prefix and key == "resourceType"):
                continue
            name = key.lstrip("_")
            if key in ("extension", "modifierExtension") and isinstance(value, list):
                # An extension's content is compared under its URL, not by position.
                for item in value:
                    if isinstance(item, dict):
                        inner = {k: v for k, v in item.items() if k != "url"}
                        path = f"{prefix}.{name}" if prefix else name
                        found |= leaves(inner, f"{path}({item.get('url', '')})")
                continue
            found |= leaves(value, f"{prefix}.{name}" if prefix else name)
    elif isinstance(resource, list):
        for item in resource:
            found |= leaves(item, prefix)
    elif resource is not None and resource != "":
        found.add((prefix, _normalise(resource)))
    return found


def identifier_values(resource: dict[str, Any]) -> set[str]:
    """Return the identifier values of a resource (masterIdentifier included)."""
    values = {str(i.get("value")) for i in resource.get("identifier", []) or [] if i.get("value")}
    master = resource.get("masterIdentifier")
    if isinstance(master, dict) and master.get("value"):
        values.add(str(master["value"]))
    return values


def compare(
    expected: dict[str, Any],
    actual: dict[str, Any],
    notes: list[Deliberate],
    skipped_types: set[str],
) -> Score:
    """Score one translated Bundle against one expected Bundle."""
    score = Score(messages=1)
    pool: dict[str, list[tuple[set[str], set[Leaf]]]] = defaultdict(list)
    for entry in actual.get("entry", []):
        resource = entry["resource"]
        pool[resource["resourceType"]].append((identifier_values(resource), leaves(resource)))
    used: set[int] = set()
    for entry in expected.get("entry", []):
        resource = entry["resource"]
        kind = resource["resourceType"]
        if kind in skipped_types:
            continue
        wanted = leaves(resource)
        counted = {leaf for leaf in wanted if not any(n.covers(kind, leaf) for n in notes)}
        score.deliberate += len(wanted) - len(counted)
        score.resources += 1
        score.elements += len(counted)
        ids = identifier_values(resource)
        best, best_agreed = None, -1
        for candidate_ids, candidate_leaves in pool.get(kind, []):
            key = id(candidate_leaves)
            if key in used:
                continue
            if ids and candidate_ids and not ids & candidate_ids:
                continue
            agreed = len(counted & candidate_leaves)
            if agreed > best_agreed:
                best, best_agreed = key, agreed
        if best is None:
            score.missing_types[kind] += 1
            continue
        used.add(best)
        score.matched += 1
        score.agreed += best_agreed
    return score


def corpus_samples() -> list[tuple[str, Path, Path]]:
    """Return (message type folder, v2 file, expected file) for every sample with an expectation."""
    samples = []
    for expected in sorted(CORPUS.glob("*/*-expected.json")):
        source = expected.with_name(expected.name.replace("-expected.json", ".hl7"))
        if source.exists():
            samples.append((expected.parent.name, source, expected))
    return samples


def read_message(path: Path) -> Message:
    """Read a corpus HL7 v2 file (UTF-8, a byte-order mark tolerated)."""
    return Message(path.read_bytes().decode("utf-8-sig"))


def score_corpus() -> dict[str, Score]:
    """Translate every sample and return the scores per message type."""
    scores: dict[str, Score] = defaultdict(Score)
    for kind, source, expected_path in corpus_samples():
        notes, skipped = load_deliberate(kind=kind)
        conversion = convert(read_message(source), recorded="2026-01-01T00:00:00Z", validate=False)
        expected = loads(expected_path.read_text(encoding="utf-8"))
        actual = loads(dumps(conversion.bundle))
        scores[kind].add(compare(expected, actual, notes, skipped))
    return dict(scores)


def table(scores: dict[str, Score]) -> str:
    """Return the comparison table as text."""
    lines = [
        f"{'type':<9} {'msgs':>4}  {'resources matched':>20}  {'elements agreed':>22}  "
        f"{'deliberate':>10}  most missed",
    ]
    total = Score()
    for kind in sorted(scores):
        score = scores[kind]
        total.add(score)
        missed = ", ".join(
            f"{name} {count}"
            for name, count in sorted(score.missing_types.items(), key=lambda kv: -kv[1])[:3]
        )
        lines.append(
            f"{kind:<9} {score.messages:>4}  "
            f"{score.matched:>6}/{score.resources:<6} {score.resource_share:>5.0%}  "
            f"{score.agreed:>7}/{score.elements:<7} {score.element_share:>5.0%}  "
            f"{score.deliberate:>10}  {missed}"
        )
    lines.append(
        f"{'all':<9} {total.messages:>4}  {total.matched:>6}/{total.resources:<6} "
        f"{total.resource_share:>5.0%}  {total.agreed:>7}/{total.elements:<7} "
        f"{total.element_share:>5.0%}  {total.deliberate:>10}"
    )
    return "\n".join(lines)


def main() -> int:
    """Print the table; exit 0."""
    sys.stdout.write(table(score_corpus()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
