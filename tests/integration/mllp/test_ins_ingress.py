"""INS rules at MLLP ingress, real store: AE with ERR at PID-3/PID-32, per sender, per deployment.

A sender whose ``identity_policy`` is ``refuse`` gets AE with one ERR per
broken rule (ERR-2 location, ERR-3 table 0357 code); the refusal is kept with
its reason. Under ``strip`` the same message is accepted and its envelope
says what was wrong, for routing to forward it without the INS (flagged).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import hl7
import pytest

from tests.integration.mllp.conftest import Listener, StartListener, msa, parse_answer
from tests.messages import ORU

NIR = "277076322082910"
TEST_OID = "1.2.250.1.213.1.4.10"
PARTNERS: dict[str, Any] = {
    "partners": [
        {
            "id": "lab-refuse",
            "name": "Refuses a bad INS (PAM FR: VALI or QUAL)",
            "kind": "lab",
            "facilities": ["LAB-REFUSE"],
            "identity_policy": "refuse",
        },
        {
            "id": "lab-rniv",
            "name": "Refuses a bad INS; only QUAL is qualified (RNIV)",
            "kind": "lab",
            "facilities": ["LAB-RNIV"],
            "identity_policy": "refuse",
            "qualified_statuses": ["QUAL"],
        },
        {"id": "lab-strip", "name": "Default policy", "kind": "lab", "facilities": ["LAB-STRIP"]},
    ]
}


def oru(facility: str, control_id: str, ins: str, pid32: str = "VALI") -> bytes:
    """Return the ORU sample from ``facility`` with PID-3's INS repetition and PID-32 replaced."""
    text = ORU.decode().replace("|LABO-SUD|", f"|{facility}|", 1)
    text = text.replace("|LS-0001|", f"|{control_id}|", 1)
    text = text.replace(
        f"{NIR}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS", ins.replace("~", "\\R\\")
    )
    return text.replace("|VALI\r", f"|{pid32}\r").encode()


def ins(value: str = NIR, oid: str = "1.2.250.1.213.1.4.8") -> str:
    authority = f"ASIP-SANTE-INS-NIR&{oid}&ISO" if oid else "ASIP-SANTE-INS-NIR"
    return f"{value}^^^{authority}^INS"


def errors(answer: hl7.Message) -> list[tuple[str, str, str]]:
    """Return (ERR-2 location, ERR-3 code, ERR-4 severity) of each ERR."""
    return [
        (str(segment[2]), str(segment[3][0][0]), str(segment[4]))
        for segment in answer
        if str(segment[0]) == "ERR"
    ]


@pytest.fixture
async def ins_listener(start_listener: StartListener) -> Listener:
    return await start_listener(partners=PARTNERS)


@pytest.mark.parametrize(
    ("name", "pid3", "pid32", "expected"),
    [
        ("wrong OID (old INS-C)", ins(oid="1.2.250.1.213.1.4.2"), "VALI", [("PID^1^3^2^4", "103")]),
        ("missing OID", ins(oid=""), "VALI", [("PID^1^3^2^4", "101")]),
        ("NIR key", ins("277076322082911"), "VALI", [("PID^1^3^2^1", "102")]),
        ("Corsica key", ins("180012A12345621"), "VALI", [("PID^1^3^2^1", "102")]),
        ("no status", ins(), "", [("PID^1^32", "101")]),
        ("provisional", ins(), "PROV", [("PID^1^32", "103")]),
        (
            "two rules at once",
            ins("277076322082911"),
            "DOUT",
            [("PID^1^3^2^1", "102"), ("PID^1^32", "103")],
        ),
    ],
)
async def test_a_refusing_sender_gets_ae_with_err_per_rule_and_the_refusal_is_kept(
    ins_listener: Listener,
    pool: asyncpg.Pool,
    name: str,
    pid3: str,
    pid32: str,
    expected: list[tuple[str, str]],
) -> None:
    answer = parse_answer(await ins_listener.send(oru("LAB-REFUSE", "INS-1", pid3, pid32)))
    assert msa(answer) == ("AE", "INS-1"), name
    assert errors(answer) == [(where, code, "E") for where, code in expected], name
    row = await pool.fetchrow("SELECT status, sender, reason FROM messages")
    assert (row["status"], row["sender"]) == ("rejected", "lab-refuse")
    assert row["reason"].startswith("identity: ")
    assert NIR[:13] not in row["reason"] and "2770763220829" not in row["reason"]
    event = await pool.fetchval("SELECT event FROM audit_pending WHERE event->>'kind' = 'rejected'")
    assert event["detail"]["kind"] == "identity"
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0  # nothing goes on


async def test_a_valid_qualified_ins_is_accepted_from_a_refusing_sender(
    ins_listener: Listener, pool: asyncpg.Pool
) -> None:
    answer = parse_answer(await ins_listener.send(oru("LAB-REFUSE", "INS-OK", ins())))
    assert msa(answer) == ("AA", "INS-OK")
    assert errors(answer) == []
    envelope = await pool.fetchval("SELECT envelope FROM messages")
    assert envelope["identity"] == {
        "ins_present": True,
        "ins_qualified": True,
        "reliability": "VALI",
        "issues": [],
    }


async def test_which_status_is_qualified_is_each_senders_own(ins_listener: Listener) -> None:
    rniv_vali = parse_answer(await ins_listener.send(oru("LAB-RNIV", "R-VALI", ins(), "VALI")))
    assert msa(rniv_vali) == ("AE", "R-VALI")
    assert errors(rniv_vali) == [("PID^1^32", "103", "E")]
    rniv_qual = parse_answer(await ins_listener.send(oru("LAB-RNIV", "R-QUAL", ins(), "QUAL")))
    assert msa(rniv_qual) == ("AA", "R-QUAL")
    pam_vali = parse_answer(await ins_listener.send(oru("LAB-REFUSE", "P-VALI", ins(), "VALI")))
    assert msa(pam_vali) == ("AA", "P-VALI")


async def test_under_strip_the_message_is_accepted_and_says_what_to_strip(
    ins_listener: Listener, pool: asyncpg.Pool
) -> None:
    sent = oru("LAB-STRIP", "S-1", ins("277076322082911"), "PROV")
    answer = parse_answer(await ins_listener.send(sent))
    assert msa(answer) == ("AA", "S-1")
    envelope = await pool.fetchval("SELECT envelope FROM messages")
    assert envelope["identity"]["ins_present"] and not envelope["identity"]["ins_qualified"]
    assert envelope["identity"]["issues"] == ["key_mismatch", "not_qualified"]


async def test_a_test_oid_is_refused_only_where_the_deployment_is_production(
    start_listener: StartListener,
) -> None:
    # The ANS examples send test INS with MSH-11 = P: the deployment decides, not MSH-11.
    sent = oru("LAB-REFUSE", "T-1", ins("208037261004817", TEST_OID))
    assert b"|P|2.5|" in sent
    testing = await start_listener(partners=PARTNERS)
    assert msa(parse_answer(await testing.send(sent))) == ("AA", "T-1")
    production = await start_listener(partners=PARTNERS, ins_production=True)
    answer = parse_answer(await production.send(sent.replace(b"|T-1|", b"|T-2|")))
    assert msa(answer) == ("AE", "T-2")
    assert errors(answer) == [("PID^1^3^2^4", "103", "E")]
