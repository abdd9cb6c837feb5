"""Clinical routing rules on the synthetic French messages and the shared partner directory."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from broker.directory import Directory, parse_directory
from broker.yamlfile import load_yaml
from routing import rules
from tests.messages import DATA, ORU, REF, envelope

BASE, _ = load_yaml(DATA / "partners.yaml")


def directory(change: Callable[[dict[str, Any]], None] | None = None) -> Directory:
    data = copy.deepcopy(BASE)
    if change:
        change(data)
    return parse_directory(data, "partners.yaml")


def partner(data: dict[str, Any], pid: str) -> dict[str, Any]:
    return next(p for p in data["partners"] if p["id"] == pid)


def by_partner(decision: rules.Decision) -> dict[str, list[str]]:
    return {r.partner: [str(reason) for reason in r.reasons] for r in decision.recipients}


def test_result_reaches_ordering_provider_gp_and_copies_to_and_nobody_else() -> None:
    decision = rules.route(envelope(ORU), directory())
    assert decision.kind == "result"
    assert by_partner(decision) == {
        "cabinet-dupont": [
            "ordering-provider via OBR-16=10001234567",
            "ordering-provider via ORC-12=10001234567",
            "patient-gp via PD1-4=10003456789",
        ],
        "maison-sante-nord": ["copies-to via OBR-28=10007777777"],
    }
    assert decision.is_routable and decision.refused is None and not decision.strip_ins
    assert [r.rules for r in decision.recipients] == [
        ["ordering-provider", "patient-gp"],
        ["copies-to"],
    ]


def test_referral_reaches_the_referred_to_provider_not_back_to_the_referrer() -> None:
    decision = rules.route(envelope(REF, sender="cabinet-dupont"), directory())
    assert decision.kind == "referral"
    assert by_partner(decision) == {"chu-montpellier": ["referred-to via PRD(RT)=10009999999"]}


def test_referral_answer_goes_back_to_the_referrer() -> None:
    answer = (
        REF.replace(b"|LGC|CAB-DUPONT|", b"|DPI|CHU-MTP|")
        .replace(b"REF^I12^REF_I12", b"RRI^I12^RRI_I12")
        .replace(b"RF1|P^Pending", b"RF1|A^Accepted")
    )
    decision = rules.route(envelope(answer, sender="chu-montpellier"), directory())
    assert decision.kind == "answer"
    assert by_partner(decision) == {"cabinet-dupont": ["referrer via PRD(RP)=10001234567"]}


def test_a_rule_naming_the_sender_does_not_send_back_to_it() -> None:
    decision = rules.route(envelope(ORU, sender="cabinet-dupont"), directory())
    assert set(by_partner(decision)) == {"maison-sante-nord"}
    assert any(s.why == "is the sender" and s.field == "OBR-16" for s in decision.skipped)


@pytest.mark.parametrize(
    ("handling", "copies"),
    [(b"", True), (b"CC", True), (b"BCC", True), (b"N", False), (b"A~N", False)],
)
def test_obr49_decides_whether_copies_are_requested(handling: bytes, copies: bool) -> None:
    raw = ORU.replace(
        b"Marc^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO\r",
        b"Marc^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO" + b"|" * 21 + handling + b"\r",
    )
    env = envelope(raw)
    assert env.handling == [c.decode() for c in handling.split(b"~") if c]
    decision = rules.route(env, directory())
    assert ("maison-sante-nord" in by_partner(decision)) is copies
    assert "cabinet-dupont" in by_partner(decision)
    if not copies:
        assert any("OBR-49" in s.why for s in decision.skipped)


def test_explicit_route_adds_a_partner_when_enabled() -> None:
    def enable(data: dict[str, Any]) -> None:
        data["routes"][1]["enabled"] = True

    assert "chu-montpellier" not in by_partner(rules.route(envelope(ORU), directory()))
    decision = rules.route(envelope(ORU), directory(enable))
    assert by_partner(decision)["chu-montpellier"] == [
        "route:all-lab-results-copy via routes=chu-montpellier"
    ]


def test_route_field_conditions_and_role_targets() -> None:
    def add(data: dict[str, Any]) -> None:
        data["routes"].append(
            {
                "name": "glucose-to-gp",
                "when": {"message": "ORU^*", "fields": {"OBR-4.1": "2345-*"}},
                "to": ["copies-to", {"partner": "cabinet-sans-interface"}],
            }
        )

    decision = rules.route(envelope(ORU), directory(add))
    assert (
        "route:glucose-to-gp via routes=cabinet-sans-interface"
        in by_partner(decision)["cabinet-sans-interface"]
    )
    assert "route:glucose-to-gp" in decision.recipients[1].rules  # maison-sante-nord, 2 rules
    other = envelope(ORU.replace(b"2345-7^Glucose", b"718-7^Hemoglobin"))
    assert "cabinet-sans-interface" not in by_partner(rules.route(other, directory(add)))


def test_message_addressed_to_a_known_partner_goes_to_it() -> None:
    raw = ORU.replace(b"|CAREBROKER|REGION|", b"|CAREBROKER|CAB-MAILBOX|")
    decision = rules.route(envelope(raw), directory())
    assert by_partner(decision)["cabinet-sans-interface"] == ["addressee via MSH-6=CAB-MAILBOX"]


def test_unknown_providers_make_it_unroutable_with_a_reason_naming_fields_not_patients() -> None:
    raw = (
        ORU.replace(b"10001234567", b"19999999999")
        .replace(b"10007777777", b"19999999998")
        .replace(b"10003456789", b"19999999997")
    )
    decision = rules.route(envelope(raw), directory())
    assert not decision.is_routable
    reason = decision.reason()
    assert "OBR-16=19999999999 is not in the directory" in reason
    assert "OBR-28=19999999998" in reason
    for patient_data in ("MARTIN", "JEANNE", "LS-PAT-42", "277076322082910", "19700101"):
        assert patient_data not in reason


def test_partner_without_endpoint_is_skipped_with_its_reason() -> None:
    def lab_practitioner(data: dict[str, Any]) -> None:
        partner(data, "labo-sud")["practitioners"] = [
            {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "10008888888"}
        ]

    raw = ORU.replace(b"10007777777", b"10008888888")
    decision = rules.route(envelope(raw, sender="chu-montpellier"), directory(lab_practitioner))
    assert "labo-sud" not in by_partner(decision)
    assert any(s.why == "(labo-sud) has no endpoint" for s in decision.skipped)


def test_unqualified_ins_is_refused_or_stripped_per_sender_policy() -> None:
    raw = ORU.replace(b"|VALI\r", b"|PROV\r")
    env = envelope(raw)
    assert env.identity.ins_present and not env.identity.ins_qualified
    stripped = rules.route(env, directory())
    assert stripped.is_routable and stripped.strip_ins

    def refuse(data: dict[str, Any]) -> None:
        partner(data, "labo-sud")["identity_policy"] = "refuse"

    refused = rules.route(env, directory(refuse))
    assert not refused.is_routable
    assert "not valid and qualified (not_qualified)" in refused.reason()


def test_fhir_input_is_classified_by_its_focus_resource() -> None:
    env = envelope(ORU).model_copy(update={"format": "fhir", "message_type": "DiagnosticReport"})
    assert rules.kind_of(env) == "result"
    env = env.model_copy(update={"message_type": "ServiceRequest"})
    assert rules.kind_of(env) == "referral"
