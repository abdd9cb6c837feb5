"""The FHIR gateway against a real PostgreSQL: durable accept, de-duplication, refusals.

The gateway's routes run in a FastAPI app driven through httpx's ASGI
transport (the HTTP stack minus the socket); the message store is the real
one on this test's own database, so what is asserted is what an operator
would find: messages rows, payloads, ingress keys, outbox records, audit
events.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from adapters.fhir.gateway import Gateway, create_router
from adapters.hl7v2.er7 import Message
from adapters.translate.bundle import dumps
from adapters.translate.v2_to_fhir import convert
from broker.directory import Directory, parse_directory
from broker.pseudonym import Pseudonymizer
from broker.store.messages import MessageStore
from broker.store.refusals import RefusalStore
from broker.strangers import StrangerRecorder
from tests.conftest import CORPUS, REPO

LAB_TOKEN = "labo-sud-secret-token"
GP_TOKEN = "cabinet-dupont-secret-token"


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def directory() -> Directory:
    """The shared example directory, with tokens for two partners."""
    import yaml

    data = yaml.safe_load((REPO / "tests" / "data" / "partners.yaml").read_text())
    for partner in data["partners"]:
        if partner["id"] == "labo-sud":
            partner["token_sha256"] = [_sha(LAB_TOKEN)]
            # The ODS code the NHS BaRS examples of the corpus send as.
            partner["identifiers"] = [
                {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RND"}
            ]
        if partner["id"] == "cabinet-dupont":
            partner["token_sha256"] = [_sha(GP_TOKEN)]
    return parse_directory(data, "partners.yaml")


def make_app(store: MessageStore, max_body: int = 2 * 1024 * 1024) -> FastAPI:
    app = FastAPI()
    found = directory()
    app.state.strangers = StrangerRecorder(RefusalStore(store.pool))
    app.include_router(
        create_router(
            Gateway(
                store=store,
                directory=lambda: found,
                pseudonymizer=Pseudonymizer(b"k" * 32),
                max_body_bytes=max_body,
                strangers=app.state.strangers,
            )
        )
    )
    return app


@pytest.fixture
async def store(pool: asyncpg.Pool) -> MessageStore:
    return MessageStore(pool, topic_prefix="t.fhir.")


@pytest.fixture
def app(store: MessageStore) -> FastAPI:
    return make_app(store)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://carebroker") as c:
        yield c


def auth(token: str = LAB_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}


def lab_message(control_id: str = "LS-0001") -> dict[str, Any]:
    """A FHIR message from labo-sud: its ORU^R01 translated (MessageHeader.sender = LABO-SUD)."""
    text = (REPO / "tests" / "data" / "oru_labo_sud.hl7").read_text()
    bundle = convert(Message(text.replace("LS-0001", control_id))).bundle
    result: dict[str, Any] = json.loads(dumps(bundle))
    return result


async def rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT m.id, m.status, m.sender, m.control_id, m.message_type, m.reason, m.format,"
        " m.channel, m.envelope, p.data FROM messages m"
        " JOIN payloads p ON p.message_id = m.id ORDER BY m.received_at, m.id"
    )


def outcome_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    OperationOutcome.model_validate(body)
    assert body["resourceType"] == "OperationOutcome"
    return body


async def test_metadata_lists_exactly_what_is_supported(client: httpx.AsyncClient) -> None:
    response = await client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    rest = statement["rest"][0]
    assert sorted(r["type"] for r in rest["resource"]) == [
        "DiagnosticReport",
        "DocumentReference",
        "ServiceRequest",
        "Task",
    ]
    assert all(r["interaction"] == [{"code": "create"}] for r in rest["resource"])
    assert all(r["conditionalCreate"] for r in rest["resource"])
    assert [o["name"] for o in rest["operation"]] == ["process-message"]
    assert rest["interaction"] == [{"code": "transaction"}]


async def test_process_message_is_durable_and_answers_ok(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    message = lab_message()
    response = await client.post("/fhir/$process-message", json=message, headers=auth())
    assert response.status_code == 200, response.text
    answer = response.json()
    Bundle.model_validate(answer)
    header = answer["entry"][0]["resource"]
    assert answer["type"] == "message"
    assert header["response"]["code"] == "ok"
    assert header["response"]["identifier"] == message["entry"][0]["resource"]["id"]
    assert header["eventCoding"] == message["entry"][0]["resource"]["eventCoding"]

    [row] = await rows(pool)
    assert (row["status"], row["sender"], row["format"], row["channel"]) == (
        "accepted",
        "labo-sud",
        "fhir",
        "fhir",
    )
    assert row["control_id"] == "LIS|LS-0001"
    assert row["message_type"] == "ORU^R01"
    assert json.loads(row["data"]) == message, "the original bytes are kept"
    envelope = row["envelope"]
    sources = {(p["source"], p["id"]) for p in envelope["providers"]}
    assert ("ORC-12", "10001234567") in sources  # ServiceRequest.requester
    assert ("PD1-4", "10003456789") in sources  # Patient.generalPractitioner
    paths = [p["path"] for p in envelope["providers"] if p["source"] == "ORC-12"]
    assert paths and paths[0].startswith("Bundle.entry[") and paths[0].endswith(".requester")
    assert envelope["identity"] == {
        "ins_present": True,
        "ins_qualified": True,
        "reliability": "VALI",
        "issues": [],
    }
    assert "277076322082910" not in json.dumps(envelope), "no identifier in clear"
    outbox = await pool.fetchval("SELECT count(*) FROM outbox WHERE topic LIKE 't.fhir.%'")
    assert outbox == 1
    kinds = await pool.fetch("SELECT event->>'kind' AS kind FROM audit_pending ORDER BY id")
    assert [k["kind"] for k in kinds] == ["received"]


async def test_resend_gets_the_original_answer_not_a_second_message(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    message = lab_message("LS-0002")
    first = await client.post("/fhir/$process-message", json=message, headers=auth())
    again = await client.post("/fhir/$process-message", json=message, headers=auth())
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert len(await rows(pool)) == 1
    assert await pool.fetchval("SELECT duplicates FROM ingress_keys") == 1
    kinds = await pool.fetch("SELECT event->>'kind' AS kind FROM audit_pending ORDER BY id")
    assert [k["kind"] for k in kinds] == ["received", "duplicate"]


async def test_async_mode_answers_202(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    response = await client.post(
        "/fhir/$process-message?async=true", json=lab_message("LS-0003"), headers=auth()
    )
    assert response.status_code == 202
    body = outcome_of(response)
    assert body["issue"][0]["severity"] == "information"
    [row] = await rows(pool)
    assert row["status"] == "accepted"


async def test_rest_create_honours_if_none_exist(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    request = json.loads((CORPUS / "fhir-r4-examples" / "ServiceRequest-lipid.json").read_text())
    headers = {**auth(GP_TOKEN), "If-None-Exist": "identifier=urn:oid:1.2.3|ORD-9&status=active"}
    first = await client.post("/fhir/ServiceRequest", json=request, headers=headers)
    assert first.status_code == 201, first.text
    created = first.json()
    assert first.headers["Location"].endswith(f"/fhir/ServiceRequest/{created['id']}/_history/1")
    swapped = {**headers, "If-None-Exist": "status=active&identifier=urn:oid:1.2.3|ORD-9"}
    again = await client.post("/fhir/ServiceRequest", json=request, headers=swapped)
    assert again.status_code == 200
    assert again.json()["id"] == created["id"]
    assert len(await rows(pool)) == 1
    plain = await client.post("/fhir/ServiceRequest", json=request, headers=auth(GP_TOKEN))
    plain_again = await client.post("/fhir/ServiceRequest", json=request, headers=auth(GP_TOKEN))
    assert plain.status_code == plain_again.status_code == 201
    assert plain.json()["id"] != plain_again.json()["id"], "a plain create is not idempotent"
    stored = await rows(pool)
    assert len(stored) == 3
    assert {r["message_type"] for r in stored} == {"REF^I12"}


async def test_transaction_bundle_of_creates(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    task = json.loads((CORPUS / "fhir-r4-examples" / "Task-example1.json").read_text())
    report = json.loads((CORPUS / "fhir-r4-examples" / "DiagnosticReport-102.json").read_text())
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "identifier": {
            "system": "urn:ietf:rfc:3986",
            "value": "urn:uuid:2b1b0ea6-0000-4000-8000-000000000001",
        },
        "entry": [
            {"resource": task, "request": {"method": "POST", "url": "Task"}},
            {"resource": report, "request": {"method": "POST", "url": "DiagnosticReport"}},
        ],
    }
    response = await client.post("/fhir", json=bundle, headers=auth())
    assert response.status_code == 200, response.text
    answer = response.json()
    Bundle.model_validate(answer)
    assert answer["type"] == "transaction-response"
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 2
    again = await client.post("/fhir", json=bundle, headers=auth())
    assert again.content == response.content
    assert len(await rows(pool)) == 1


BAD_INPUT = [
    pytest.param(
        "/fhir/$process-message",
        b'{"resourceType": "Bundle", "type": ',
        400,
        "$",
        id="invalid-json",
    ),
    pytest.param(
        "/fhir/$process-message",
        json.dumps({"resourceType": "Patient", "id": "p"}).encode(),
        400,
        "resourceType",
        id="wrong-resourceType",
    ),
    pytest.param(
        "/fhir/$process-message",
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "message",
                "identifier": {"value": "no-header"},
                "entry": [{"resource": {"resourceType": "Patient", "id": "p"}}],
            }
        ).encode(),
        400,
        "Bundle.entry[0].resource",
        id="no-MessageHeader-first",
    ),
    pytest.param(
        "/fhir/ServiceRequest",
        json.dumps(
            {"resourceType": "ServiceRequest", "status": "active", "intent": "order"}
        ).encode(),
        400,
        "ServiceRequest.subject",
        id="invalid-resource-names-FHIRPath",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "expression"), BAD_INPUT)
async def test_bad_input_is_refused_with_fhirpath_and_kept(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    path: str,
    body: bytes,
    status: int,
    expression: str,
) -> None:
    response = await client.post(path, content=body, headers=auth())
    assert response.status_code == status, response.text
    issue = outcome_of(response)["issue"][0]
    assert issue["severity"] == "error"
    assert issue["expression"] == [expression]
    [row] = await rows(pool)
    assert row["status"] == "rejected"
    assert row["sender"] == "labo-sud"
    assert row["reason"]
    assert bytes(row["data"]) == body, "refused input is kept as sent"
    kinds = await pool.fetch("SELECT event->>'kind' AS kind FROM audit_pending")
    assert [k["kind"] for k in kinds] == ["rejected"]
    # Nothing else broke: the next good message is accepted.
    ok = await client.post("/fhir/$process-message", json=lab_message("LS-OK"), headers=auth())
    assert ok.status_code == 200


async def test_a_nul_in_a_string_is_refused_400_and_kept(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """FHIR strings cannot hold U+0000, nor can PostgreSQL text: refused, named, kept."""
    message = lab_message("NUL-1")
    message["identifier"]["value"] = "NUL\u0000-1"
    body = json.dumps(message).encode()
    assert b"\\u0000" in body
    response = await client.post("/fhir/$process-message", content=body, headers=auth())
    assert response.status_code == 400
    assert "U+0000" in outcome_of(response)["issue"][0]["diagnostics"]
    [row] = await rows(pool)
    assert row["status"] == "rejected" and bytes(row["data"]) == body
    ok = await client.post("/fhir/$process-message", json=lab_message("LS-OK"), headers=auth())
    assert ok.status_code == 200


async def test_a_sender_posing_as_another_partner_is_refused(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    # cabinet-dupont sends labo-sud's message: MessageHeader.sender names LABO-SUD.
    response = await client.post(
        "/fhir/$process-message", json=lab_message(), headers=auth(GP_TOKEN)
    )
    assert response.status_code == 403
    issue = outcome_of(response)["issue"][0]
    assert issue["code"] == "security"
    assert issue["expression"] == ["MessageHeader.sender"]
    [row] = await rows(pool)
    assert (row["status"], row["sender"]) == ("rejected", "cabinet-dupont")


async def test_a_wrong_media_type_is_refused_415_and_kept(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    headers = {**auth(), "Content-Type": "application/fhir+xml"}
    response = await client.post("/fhir/$process-message", json=lab_message(), headers=headers)
    assert response.status_code == 415
    assert outcome_of(response)["issue"][0]["code"] == "not-supported"
    [row] = await rows(pool)
    assert (row["status"], row["sender"]) == ("rejected", "labo-sud")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param({"Content-Type": "application/fhir+json"}, "no_credentials", id="none"),
        pytest.param(auth("not-a-token"), "unknown_token", id="unknown-token"),
        pytest.param(
            {
                "Authorization": "Basic bGFiby1zdWQ6c2VjcmV0",
                "Content-Type": "application/fhir+json",
            },
            "unsupported_scheme",
            id="basic",
        ),
    ],
)
async def test_a_stranger_gets_401_and_nothing_is_stored_but_a_count(
    client: httpx.AsyncClient,
    app: FastAPI,
    pool: asyncpg.Pool,
    headers: dict[str, str],
    reason: str,
) -> None:
    response = await client.post("/fhir/$process-message", json=lab_message(), headers=headers)
    assert response.status_code == 401
    assert outcome_of(response)["issue"][0]["code"] == "login"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await rows(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM audit_pending") == 0
    await app.state.strangers.flush()
    kept = await pool.fetch("SELECT address, channel, reason, requests FROM stranger_refusals")
    assert [tuple(r) for r in kept] == [("127.0.0.1", "fhir", reason, 1)]


async def test_200_guessed_tokens_add_one_counted_row_and_no_message(
    client: httpx.AsyncClient, app: FastAPI, pool: asyncpg.Pool
) -> None:
    body = b"{" + b" " * (1024 * 1024 - 2) + b"}"
    answers = await asyncio.gather(
        *(
            client.post("/fhir/$process-message", content=body, headers=auth(f"guess-{n}"))
            for n in range(200)
        )
    )
    assert {a.status_code for a in answers} == {401}
    await app.state.strangers.flush()
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    assert await pool.fetchval("SELECT count(*) FROM payloads") == 0
    assert await pool.fetchval("SELECT count(*) FROM audit_pending") == 0
    kept = await pool.fetch("SELECT reason, requests, bytes FROM stranger_refusals")
    assert [tuple(r) for r in kept] == [("unknown_token", 200, 200 * len(body))]


async def test_deeply_nested_json_is_refused_400_with_an_outcome_and_kept(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    for depth in (100, 100_000):
        nested = b'{"resourceType": "Bundle", "type": "message", "entry": ' + b"[" * depth
        body = nested + b"]" * depth + b"}"
        response = await client.post("/fhir/$process-message", content=body, headers=auth())
        assert response.status_code == 400, depth
        issue = outcome_of(response)["issue"][0]
        assert issue["code"] == "too-costly" and "nested deeper than" in issue["diagnostics"]
    stored = await rows(pool)
    assert [(r["status"], r["sender"]) for r in stored] == [("rejected", "labo-sud")] * 2
    assert all(r["reason"] and "nested deeper" in r["reason"] for r in stored)
    ok = await client.post("/fhir/$process-message", json=lab_message("LS-OK"), headers=auth())
    assert ok.status_code == 200


async def test_if_none_exist_criteria_never_become_an_id(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    request = json.loads((CORPUS / "fhir-r4-examples" / "ServiceRequest-lipid.json").read_text())
    criteria = "identifier=urn:oid:1.2.250.1.213.1.4.8|277076322082910&family=DUPONT"
    headers = {**auth(GP_TOKEN), "If-None-Exist": criteria}
    first = await client.post("/fhir/ServiceRequest", json=request, headers=headers)
    again = await client.post("/fhir/ServiceRequest", json=request, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    [row] = await rows(pool)
    assert row["control_id"].startswith("ServiceRequest?If-None-Exist=")
    events = await pool.fetch("SELECT event FROM audit_pending")
    for text in (row["control_id"], json.dumps(dict(row["envelope"])), str(events)):
        assert "277076322082910" not in text and "DUPONT" not in text


async def test_a_50_mb_body_is_refused_413_and_kept_capped(
    store: MessageStore, pool: asyncpg.Pool
) -> None:
    app = make_app(store, max_body=32 * 1024 * 1024)
    transport = httpx.ASGITransport(app=app)
    body = (
        b'{"resourceType": "Bundle", "type": "message", "entry": ['
        + b" " * (50 * 1024 * 1024)
        + b"]}"
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://carebroker") as c:
        response = await c.post("/fhir/$process-message", content=body, headers=auth())
        assert response.status_code == 413
        assert outcome_of(response)["issue"][0]["code"] == "too-costly"
        ok = await c.post("/fhir/$process-message", json=lab_message("LS-AFTER"), headers=auth())
        assert ok.status_code == 200
    stored = await pool.fetch(
        "SELECT m.status, p.truncated, length(p.data) AS size FROM messages m"
        " JOIN payloads p ON p.message_id = m.id ORDER BY m.received_at"
    )
    assert [(r["status"], r["truncated"]) for r in stored] == [
        ("rejected", False),
        ("accepted", False),
    ]
    assert stored[0]["size"] == 1024 * 1024


async def test_store_down_is_503_and_nothing_is_accepted(
    pool: asyncpg.Pool, database_url: str
) -> None:
    from broker.store import db

    broken = await db.connect(database_url, 2)
    await broken.close()
    transport = httpx.ASGITransport(app=make_app(MessageStore(broken)))
    async with httpx.AsyncClient(transport=transport, base_url="http://carebroker") as c:
        response = await c.post("/fhir/$process-message", json=lab_message(), headers=auth())
        refused = await c.post("/fhir/$process-message", content=b"{", headers=auth())
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert outcome_of(response)["issue"][0]["code"] == "transient"
    assert refused.status_code == 503, "a refusal that cannot be kept is not answered as final"
    assert await rows(pool) == []


def _corpus_files() -> list[Path]:
    return sorted((CORPUS / "fhir-r4-examples").glob("*.json")) + sorted(
        (CORPUS / "fhir-referral-nhs-bars").glob("*.json")
    )


def _route(document: dict[str, Any]) -> str:
    kind = document["resourceType"]
    if kind == "Bundle" and document.get("type") == "message":
        return "/fhir/$process-message"
    if kind == "Bundle":
        return "/fhir"
    return f"/fhir/{kind}"


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
async def test_fhir_examples_are_accepted_or_refused_with_an_outcome(
    client: httpx.AsyncClient, pool: asyncpg.Pool, path: Path
) -> None:
    body = path.read_bytes()
    document = json.loads(body.decode("utf-8-sig"))
    response = await client.post(_route(document), content=body, headers=auth())
    [row] = await rows(pool)
    if response.status_code in (200, 201, 202):
        assert row["status"] == "accepted"
        answer = response.json()
        if answer["resourceType"] == "Bundle":
            Bundle.model_validate(answer)
        elif answer["resourceType"] == "OperationOutcome":
            OperationOutcome.model_validate(answer)
        else:
            assert answer["resourceType"] == document["resourceType"]
    else:
        assert response.status_code in (400, 403, 404, 422), response.text
        issues = outcome_of(response)["issue"]
        assert issues and all(i["severity"] == "error" and i["diagnostics"] for i in issues)
        assert row["status"] == "rejected" and row["reason"]
    EXPECTED_STATUS = _EXPECTED.get(path.name)
    if EXPECTED_STATUS is not None:
        assert response.status_code == EXPECTED_STATUS, response.text


# What each example must get, where the answer is not obvious from its type.
_EXPECTED = {
    "Bundle-3a0707d3-549e-4467-b8b8-5a2ab3800efe.json": 200,  # a response message: accepted
    "Bundle-xds.json": 422,  # a transaction with Patient, Practitioner, Binary creates
    "Bundle-f001.json": 400,  # a collection, not a transaction
    # Its MessageHeader.sender is an Organization with a name and no identifier:
    # a name identifies nobody (issue 13).
    "bars_booking_request_bundle.json": 403,
    "bars_validation_request_bundle.json": 200,
    "bars_servicerequest_get.json": 400,  # a searchset
    "ServiceRequest-physiotherapy.json": 201,
    "Task-example1.json": 201,
    "DiagnosticReport-pap.json": 201,
    "DocumentReference-example.json": 201,
    "Patient-example.json": 404,
    "MessageHeader-1cbdfb97-5859-48a4-8301-d54eab818d68.json": 404,
}


def wide(text: str) -> str:
    """Return ASCII text in full-width forms (U+FF01-FF5E): how some systems type ids."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _claiming(
    control_id: str,
    *,
    source: dict[str, Any] | None = None,
    reference: dict[str, Any] | None = None,
    organisation: dict[str, Any] | None = None,
) -> Any:
    """labo-sud's message with its MessageHeader.source, sender or sender organisation changed."""
    message = lab_message(control_id)
    header = message["entry"][0]["resource"]
    if source is not None:
        header["source"] = source
    if organisation is not None:
        found = next(
            e["resource"] for e in message["entry"] if e["fullUrl"] == header["sender"]["reference"]
        )
        found.update(organisation)
    if reference is not None:
        header["sender"] = reference
    return message


SPOOFS = [
    pytest.param(
        {"source": {"name": "CHU de Montpellier", "endpoint": "LIS"}},
        "MessageHeader.source.name",
        id="the-CHU-display-name-as-source",
    ),
    pytest.param(
        {"source": {"name": "LIS", "endpoint": "urn:carebroker:partner:CHU-Montpellier "}},
        "MessageHeader.source.endpoint",
        id="the-CHU-endpoint-other-case-trailing-space",
    ),
    pytest.param(
        {
            "organisation": {
                "identifier": [{"system": "urn:carebroker:partner", "value": "CHU-MONTPELLIER "}]
            }
        },
        "MessageHeader.sender",
        id="the-CHU-id-other-case-trailing-space",
    ),
    pytest.param(
        {"organisation": {"identifier": [{"value": wide("CHU-MTP")}], "name": "labo"}},
        "MessageHeader.sender",
        id="the-CHU-facility-in-full-width",
    ),
    pytest.param(
        {
            "organisation": {
                "identifier": [{"system": "1.2.250.1.71.4.2.2", "value": "340780477"}],
                "name": "x",
            }
        },
        "MessageHeader.sender",
        id="the-CHU-FINESS-without-urn-oid",
    ),
    pytest.param(
        {"organisation": {"identifier": [{"value": "LABO-SUD"}, {"value": "CHU-MTP"}]}},
        "MessageHeader.sender",
        id="its-own-identifier-and-the-CHUs",
    ),
    pytest.param(
        {"reference": {"display": "CHU de Montpellier"}},
        "MessageHeader.sender.display",
        id="a-display-only-sender-naming-the-CHU",
    ),
    pytest.param(
        {"reference": {"display": "Laboratoire Sud"}},
        "MessageHeader.sender",
        id="a-display-only-sender",
    ),
    pytest.param(
        {"organisation": {"identifier": [], "name": "Laboratoire Sud"}},
        "MessageHeader.sender",
        id="an-organisation-with-a-name-only",
    ),
    pytest.param(
        {"organisation": {"identifier": [{"system": "urn:oid:1.2.3.4", "value": "UNKNOWN-LAB"}]}},
        "MessageHeader.sender",
        id="an-identifier-the-directory-does-not-know",
    ),
]


@pytest.mark.parametrize(("claim", "path"), SPOOFS)
async def test_a_partner_cannot_send_as_another_nor_as_nobody(
    client: httpx.AsyncClient, pool: asyncpg.Pool, claim: dict[str, Any], path: str
) -> None:
    message = _claiming("SPOOF-1", **claim)
    response = await client.post("/fhir/$process-message", json=message, headers=auth())
    assert response.status_code == 403, response.text
    issue = outcome_of(response)["issue"][0]
    assert issue["code"] == "security"
    assert issue["expression"] == [path]
    [row] = await rows(pool)
    assert (row["status"], row["sender"]) == ("rejected", "labo-sud")


@pytest.mark.parametrize(
    "claim",
    [
        pytest.param(
            {"organisation": {"identifier": [{"value": "labo-sud"}]}}, id="its-facility-other-case"
        ),
        pytest.param(
            {
                "organisation": {
                    "identifier": [{"system": "urn:carebroker:partner", "value": wide("LABO-SUD")}]
                }
            },
            id="its-id-in-full-width",
        ),
        pytest.param(
            {
                "organisation": {
                    "identifier": [
                        {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RND"}
                    ]
                }
            },
            id="its-declared-identifier",
        ),
        pytest.param(
            {
                "reference": {
                    "identifier": {"system": "urn:carebroker:partner", "value": "labo-sud"}
                }
            },
            id="a-logical-reference",
        ),
    ],
)
async def test_a_partner_identified_by_its_own_identifiers_is_accepted(
    client: httpx.AsyncClient, claim: dict[str, Any]
) -> None:
    message = _claiming("OWN-1", **claim)
    response = await client.post("/fhir/$process-message", json=message, headers=auth())
    assert response.status_code == 200, response.text
