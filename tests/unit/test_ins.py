"""INS rules (adapters/hl7v2/ins.py): OIDs, the NIR key, PID-32 per the sender's policy."""

from __future__ import annotations

import pytest

from adapters.hl7v2 import ins
from adapters.hl7v2.er7 import Message
from tests.messages import ORU

NIR = "277076322082910"  # key 10 = 97 - 2770763220829 mod 97
LOCAL = "LS-PAT-42^^^LABO-SUD&1.2.250.1.999.1&ISO^PI"


def message(pid3: str, pid32: str = "VALI") -> Message:
    """Return the ORU sample with PID-3 and PID-32 replaced."""
    text = ORU.decode()
    start = text.index("PID|")
    end = text.index("\r", start)
    fields = ["PID", "1", "", pid3, "", "MARTIN^JEANNE^^^^^L", "", "19700101", "F"]
    fields += [""] * (32 - len(fields)) + [pid32]
    return Message(text[:start] + "|".join(fields) + text[end:])


def ins_rep(value: str = NIR, oid: str = ins.NIR_OID, namespace: str = "ASIP-SANTE-INS-NIR") -> str:
    authority = f"{namespace}&{oid}&ISO" if oid else namespace
    return f"{value}^^^{authority}^INS"


def problems(msg: Message, policy: ins.Policy | None = None) -> list[tuple[str, int, str]]:
    return [(p.kind, p.code, p.location) for p in ins.check(msg, policy).problems]


@pytest.mark.parametrize(
    ("number", "key"),
    [
        ("2770763220829", 10),
        ("180012A123456", 20),  # Corsica-du-Sud: 2A counts as 19
        ("275122B004011", 68),  # Haute-Corse: 2B counts as 18
        ("180011912345" + "6", 20),  # the same number written with 19: same key
    ],
)
def test_nir_key_is_97_minus_the_number_mod_97_with_corsica_read_as_19_and_18(
    number: str, key: int
) -> None:
    assert ins.nir_key(number) == key


def test_a_valid_nir_with_vali_is_qualified_and_can_travel() -> None:
    msg = message(f"{LOCAL}~{ins_rep()}")
    result = ins.check(msg)
    assert (result.present, result.qualified, result.problems) == (True, True, ())
    assert ins.is_qualified(msg)
    assert ins.qualified_ins(msg) == (NIR, ins.NIR_OID)


def test_the_nir_is_preferred_to_the_nia_for_the_mail_header() -> None:
    msg = message(f"{ins_rep(oid=ins.NIA_OID, namespace='ASIP-SANTE-INS-NIA')}~{ins_rep()}")
    assert ins.qualified_ins(msg) == (NIR, ins.NIR_OID)


def test_no_ins_is_neither_a_problem_nor_qualified() -> None:
    result = ins.check(message(LOCAL, "QUAL"))
    assert (result.present, result.qualified, result.problems) == (False, False, ())


def test_wrong_and_missing_oids_name_the_repetition_and_component() -> None:
    old_insc = message(f"{LOCAL}~{ins_rep(oid='1.2.250.1.213.1.4.2')}")
    assert problems(old_insc) == [("oid_unknown", 103, "PID-3[2].4")]
    missing = message(ins_rep(oid=""))
    assert problems(missing) == [("oid_missing", 101, "PID-3.4")]
    assert not ins.is_qualified(missing)


def test_the_insc_of_old_is_not_taken_for_an_ins_claim() -> None:
    insc = "492823371705143^^^ASIP-SANTE-INS-C&1.2.250.1.213.1.4.6&ISO^NH"
    assert ins.check(message(f"{insc}~{ins_rep()}")).qualified


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("277076322082911", "key_mismatch"),
        ("27707632208291", "matricule_malformed"),
        ("2770763220829AB", "matricule_malformed"),
    ],
)
def test_a_malformed_matricule_is_a_data_type_error_at_pid_3_1(value: str, kind: str) -> None:
    assert problems(message(f"{LOCAL}~{ins_rep(value)}")) == [(kind, 102, "PID-3[2].1")]


def test_corsican_nirs_pass_with_their_key() -> None:
    assert ins.check(message(ins_rep("180012A12345620"))).qualified
    assert problems(message(ins_rep("180012A12345621"))) == [("key_mismatch", 102, "PID-3.1")]


def test_the_test_oid_is_an_ins_unless_the_deployment_is_production() -> None:
    test_oid = "1.2.250.1.213.1.4.10"
    # An IHE Gazelle test NIR: its key was never computed; test NIRs are checked for shape.
    msg = message(f"{LOCAL}~{ins_rep('208037261004817', test_oid)}")
    assert ins.check(msg, ins.Policy(production=False)).qualified
    assert problems(msg, ins.Policy(production=True)) == [
        ("oid_test_in_production", 103, "PID-3[2].4")
    ]


@pytest.mark.parametrize(
    ("pid32", "kind", "code"),
    [
        ("", "status_missing", 101),
        ("PROV", "not_qualified", 103),
        ("VIDE", "not_qualified", 103),
        ("VALI~DOUT", "not_qualified", 103),  # a doubt beside it: never upgraded
        ("FICT", "not_qualified", 103),
    ],
)
def test_an_ins_without_a_qualified_status_is_named_at_pid_32(
    pid32: str, kind: str, code: int
) -> None:
    assert problems(message(ins_rep(), pid32)) == [(kind, code, "PID-32")]


def test_which_status_is_qualified_is_the_senders_choice() -> None:
    vali = message(ins_rep(), "VALI")
    qual = message(ins_rep(), "QUAL")
    rniv = ins.Policy.of(["QUAL"], production=False)
    pam = ins.Policy.of(["VALI"], production=False)
    assert ins.check(qual, rniv).qualified and not ins.check(vali, rniv).qualified
    assert ins.check(vali, pam).qualified and not ins.check(qual, pam).qualified
    assert ins.check(vali).qualified and ins.check(qual).qualified  # the default: both


def test_every_problem_is_reported_and_texts_carry_no_value() -> None:
    msg = message(f"{ins_rep('277076322082911')}~{ins_rep(oid='1.2.3')}", "PROV")
    found = ins.check(msg).problems
    assert [p.kind for p in found] == ["key_mismatch", "oid_unknown", "not_qualified"]
    assert all(NIR[:13] not in p.text for p in found)
