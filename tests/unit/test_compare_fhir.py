"""carebroker's v2 -> FHIR output agrees with FHIR-Converter's expected Bundles at least this much.

The floors are per message type, for the types carebroker translates; raise
them as the mapping improves (``python -m tests.tools.compare_fhir`` prints the
current table). Deliberate differences are listed, with reasons, in
``tests/data/fhir-compare-deliberate.yaml`` and counted apart.
"""

from __future__ import annotations

import pytest

from tests.tools.compare_fhir import Deliberate, compare, score_corpus, table

# type -> (share of expected resources matched, share of expected elements agreed)
FLOORS = {
    "ADT_A01": (0.35, 0.30),
    "ADT_A03": (0.30, 0.27),
    "ADT_A08": (0.30, 0.27),
    "ADT_A40": (0.75, 0.40),
    "ORU_R01": (0.45, 0.50),
    "REF_I12": (0.38, 0.20),
    "OML_O21": (0.38, 0.27),
    "MDM_T02": (0.43, 0.40),
    "SIU_S12": (0.43, 0.38),
}


@pytest.fixture(scope="module")
def scores():  # type: ignore[no-untyped-def]
    return score_corpus()


@pytest.mark.parametrize("kind", sorted(FLOORS))
def test_agreement_floor_per_message_type(scores, kind: str) -> None:  # type: ignore[no-untyped-def]
    resources, elements = FLOORS[kind]
    score = scores[kind]
    assert score.messages >= 1
    assert score.resource_share >= resources, table(scores)
    assert score.element_share >= elements, table(scores)


def test_the_table_is_printed_for_every_type(scores) -> None:  # type: ignore[no-untyped-def]
    printed = table(scores)
    for kind in FLOORS:
        assert kind in printed
    assert printed.splitlines()[-1].startswith("all")


def test_matching_uses_identifiers_not_generated_ids() -> None:
    expected = {
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "a",
                    "identifier": [{"value": "P1"}],
                    "gender": "male",
                }
            },
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "b",
                    "identifier": [{"value": "P2"}],
                    "gender": "female",
                }
            },
        ]
    }
    actual = {
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "x",
                    "identifier": [{"value": "P2"}],
                    "gender": "female",
                }
            },
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "y",
                    "identifier": [{"value": "P9"}],
                    "gender": "male",
                }
            },
        ]
    }
    score = compare(expected, actual, [], set())
    assert (score.resources, score.matched) == (2, 1), "P1 has no counterpart; P9 is not P1"
    assert score.agreed == 2  # P2's identifier and gender
    note = Deliberate("Patient", "gender", "", "", "test")
    assert compare(expected, actual, [note], set()).deliberate == 2
