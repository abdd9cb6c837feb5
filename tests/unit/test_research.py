"""The research stream's records: linkable, and without what names or reaches a patient."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from adapters.hl7v2.er7 import Message
from adapters.hl7v2.extract import identity, ordering_key, patient_keys
from adapters.translate.bundle import dumps
from adapters.translate.research import PSEUDONYM_SYSTEM, ResearchPseudonymizer
from adapters.translate.v2_to_fhir import convert
from broker.pseudonym import Pseudonymizer
from tests.corpus_messages import corpus_messages

Json = dict[str, Any]
ROUTING = Pseudonymizer(b"routing-key-of-the-deployment-32b")
KEY = b"research-key-not-the-routing-key"
OTHER_KEY = b"another-research-key-elsewhere!!"
CORPUS_MESSAGES = corpus_messages()
FREE_TEXT_TYPES = frozenset({"TX", "FT", "ST", "ED"})
HL7_TERMINOLOGY = ("http://terminology.hl7.org/", "http://hl7.org/fhir/")


def patient_key(message: Message) -> str:
    keys = patient_keys(message, ROUTING)
    return ordering_key(keys, identity(message), ROUTING.lane(message.control_id))


def research(message: Message, key: bytes = KEY, **options: Any) -> Json:
    bundle = json.loads(dumps(convert(message, validate=False).bundle))
    return ResearchPseudonymizer(key, **options).transform(bundle, patient_key(message))


STRUCTURE = frozenset({"resourceType", "url", "system", "fullUrl", "reference", "id"})
PSEUDONYM = re.compile(r"[0-9a-f]{32}")


def strings(node: Any) -> Iterator[str]:
    """Every string a record holds but those naming FHIR structure and the keyed digests.

    Left out: resource types, URLs, systems, references and resource ids (made
    by the translator and the research key), pseudonyms (HMAC digests, whose
    hex may hold a 4-digit value by chance), and the codes and displays of the
    HL7 terminologies the IG maps to (its words, not the sender's).
    """
    if isinstance(node, dict):
        if node.get("system") == PSEUDONYM_SYSTEM:
            assert PSEUDONYM.fullmatch(node.get("value", "0" * 32)), node
            return
        if str(node.get("system", "")).startswith(HL7_TERMINOLOGY) and "code" in node:
            return
        for key, value in node.items():
            if key not in STRUCTURE:
                yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def _iso(v2_date: str) -> list[str]:
    """The forms a v2 birth date beyond its year may take in FHIR."""
    digits = v2_date[:8]
    forms = []
    if len(digits) >= 6:
        forms.append(f"{digits[:4]}-{digits[4:6]}")
    if len(digits) == 8:
        forms += [digits, f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"]
    return forms


def forbidden(message: Message) -> set[str]:
    """The values of one message that must not reach the research stream."""
    found: set[str] = set()
    for pid in message.all("PID"):
        for rep in range(1, len(pid.repetitions(3)) + 1):
            found.add(pid.get(3, rep, 1))
        for field in (5, 9):  # patient names, aliases
            for rep in range(1, len(pid.repetitions(field)) + 1):
                found.update(pid.get(field, rep, c) for c in (1, 2, 3))
        found.update(_iso(pid.get(7)))
        for rep in range(1, len(pid.repetitions(11)) + 1):
            found.update(pid.get(11, rep, c) for c in (1, 2, 3, 5))
        for field in (13, 14):
            for rep in range(1, len(pid.repetitions(field)) + 1):
                found.update(pid.get(field, rep, c) for c in (1, 4, 7))
    for nk1 in message.all("NK1"):
        for rep in range(1, len(nk1.repetitions(2)) + 1):
            found.update(nk1.get(2, rep, c) for c in (1, 2, 3))
    for nte in message.all("NTE"):
        for rep in range(1, len(nte.repetitions(3)) + 1):
            found.add(nte.get(3, rep))
    for obx in message.all("OBX"):
        if obx.get(2) in FREE_TEXT_TYPES:
            for rep in range(1, len(obx.repetitions(5)) + 1):
                found.add(obx.get(5, rep, 5) if obx.get(2) == "ED" else obx.get(5, rep))
    return {value.strip() for value in found if value.strip()}


def leaks(record: Json, values: set[str]) -> list[str]:
    """Return the forbidden values a record holds (whole, or inside a longer string)."""
    found = []
    texts = [s.casefold() for s in strings(record)]
    for value in values:
        folded = value.casefold()
        if len(folded) >= 4:
            hit = any(folded in text for text in texts)
        elif len(folded) >= 2:  # short values (a "12" id) only as a whole string
            hit = folded in texts
        else:  # an initial alone names no one
            continue
        if hit:
            found.append(value)
    return found


@pytest.fixture(scope="module")
def records() -> dict[str, Json]:
    """The research record of every corpus message (made once: three tests read them)."""
    return {name: research(message) for name, message in CORPUS_MESSAGES}


def test_no_direct_identifier_or_free_text_of_the_corpus_reaches_any_record(
    records: dict[str, Json],
) -> None:
    problems = {name: leaks(records[name], forbidden(message)) for name, message in CORPUS_MESSAGES}
    assert sum(len(forbidden(message)) for _, message in CORPUS_MESSAGES) > 800
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_scan_finds_what_the_plain_translation_holds() -> None:
    """The scan above would see a leak: every plain translation holds forbidden values."""
    for name, message in CORPUS_MESSAGES:
        values = forbidden(message)
        if message.segment("PID") and message.segment("PID").get(5, 1, 1):  # type: ignore[union-attr]
            bundle = json.loads(dumps(convert(message, validate=False).bundle))
            assert leaks(bundle, values), name


def test_every_corpus_research_record_validates(records: dict[str, Json]) -> None:
    for name, record in records.items():
        try:
            Bundle.model_validate(record)
        except Exception as exc:
            raise AssertionError(f"{name}: {exc}") from exc


def _patient_pseudonyms(record: Json) -> set[str]:
    return {
        i["value"]
        for e in record["entry"]
        if e["resource"]["resourceType"] == "Patient"
        for i in e["resource"].get("identifier", [])
    }


ADMIT = (
    "MSH|^~\\&|GAM|CHU|CAREBROKER|REGION|20261128101500+0100||ADT^A01|A-1|P|2.5\r"
    "PID|1||PAT-77^^^CHU&1.2.250.1.999.7&ISO^PI||DURAND^CAMILLE||19810417|F|||"
    "12 RUE DES LILAS^^SAINT-JUST-LUZAC^^17320^FRA||0546000000\r"
    "PV1|1|I|CARDIO^101^1||||||||||||||||V-881|||||||||||||||||||||||||20261128080000+0100\r"
)
RESULT = (
    "MSH|^~\\&|LIS|CHU|CAREBROKER|REGION|20261130093000+0100||ORU^R01|R-1|P|2.5\r"
    "PID|1||PAT-77^^^CHU&1.2.250.1.999.7&ISO^PI||DURAND^CAMILLE||19810417|F\r"
    "OBR|1|ORD-1|FIL-1|2345-7^Glucose^LN|||20261130070000+0100\r"
    "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|||||F|||20261130080000+0100\r"
    "NTE|1||Patient à jeun depuis la veille au soir\r"
)


def test_one_patient_links_across_messages_and_not_across_keys() -> None:
    admit, result = Message(ADMIT), Message(RESULT)
    first, second = research(admit), research(result)
    assert first["identifier"]["system"] == PSEUDONYM_SYSTEM
    assert first["identifier"]["value"] == second["identifier"]["value"]
    assert _patient_pseudonyms(first) == _patient_pseudonyms(second) != set()
    elsewhere = research(admit, OTHER_KEY)
    assert elsewhere["identifier"]["value"] != first["identifier"]["value"]
    assert _patient_pseudonyms(elsewhere).isdisjoint(_patient_pseudonyms(first))
    # Not the routing pseudonym either: the research key is a separate secret.
    assert patient_key(admit) not in set(strings(first))


def _instant(record: Json, kind: str, path: tuple[str, ...]) -> datetime:
    resource = next(e["resource"] for e in record["entry"] if e["resource"]["resourceType"] == kind)
    node: Any = resource
    for step in path:
        node = node[step]
    return datetime.fromisoformat(node)


def test_dates_move_by_one_offset_per_patient_keeping_intervals_and_precision() -> None:
    admit, result = Message(ADMIT), Message(RESULT)
    plain = [json.loads(dumps(convert(m, validate=False).bundle)) for m in (admit, result)]
    first, second = research(admit, shift_days=20), research(result, shift_days=20)
    points = [
        ("Encounter", ("period", "start"), plain[0], first),
        ("Observation", ("effectiveDateTime",), plain[1], second),
        ("DiagnosticReport", ("effectiveDateTime",), plain[1], second),
    ]
    moves = {
        _instant(after, kind, path) - _instant(before, kind, path)
        for kind, path, before, after in points
    }
    assert len(moves) == 1  # one shift for the patient, across messages: intervals kept
    (move,) = moves
    assert move.seconds == 0 and 1 <= abs(move.days) <= 20
    patient = next(
        e["resource"] for e in first["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert len(patient["birthDate"]) == 4  # the year only
    assert abs(int(patient["birthDate"]) - 1981) <= 1
    monthly = research(admit, shift_days=20, birth_precision="month")
    patient = next(
        e["resource"] for e in monthly["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    shifted = date(1981, 4, 17) + move
    assert patient["birthDate"] == f"{shifted:%Y-%m}"


@pytest.mark.parametrize(
    ("kept", "expected"), [(frozenset(), "17"), (frozenset({"17320"}), "17320")]
)
def test_postal_codes_are_generalised_unless_a_large_towns(
    kept: frozenset[str], expected: str
) -> None:
    record = research(Message(ADMIT), postal_codes_kept=kept)
    patient = next(
        e["resource"] for e in record["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert patient["address"] == [{"postalCode": expected, "country": "FRA"}]
    assert "SAINT-JUST-LUZAC" not in json.dumps(record)


def test_references_follow_the_new_resource_ids() -> None:
    record = research(Message(RESULT))
    ids = {e["fullUrl"] for e in record["entry"]}
    references = [s for s in strings(record) if s.startswith("urn:uuid:") and s not in ids]
    assert references == []
    plain = json.loads(dumps(convert(Message(RESULT), validate=False).bundle))
    assert ids.isdisjoint(e["fullUrl"] for e in plain["entry"])


DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def test_every_date_of_every_record_is_an_original_date_moved_by_the_patients_shift(
    records: dict[str, Json],
) -> None:
    """No date escapes the shift, wherever it sits (periods, timings, extensions ...)."""
    shifter = ResearchPseudonymizer(KEY)
    checked = 0
    for name, message in CORPUS_MESSAGES:
        plain = json.loads(dumps(convert(message, validate=False).bundle))
        originals = {m[1] for s in strings(plain) if (m := DAY.match(s))}
        days = shifter.shift(patient_key(message))
        for text in strings(records[name]):
            if match := DAY.match(text):
                moved = date.fromisoformat(match[1]) - timedelta(days=days)
                assert moved.isoformat() in originals, (name, text)
                checked += 1
    assert checked > 1000
