"""Fuzz the FHIR JSON intake: any body, from a partner or a stranger, gets a FHIR answer.

The target is the real gateway (:mod:`adapters.fhir.gateway`: authentication,
body limits, JSON parsing, fhir.resources validation, the sender check, the
If-None-Exist key, the envelope, the answer) through its ASGI routes, over a
message store that keeps what it is given in memory, so that hundreds of
inputs run per second. Properties, for any body on any FHIR route:

- no exception escapes the gateway (the ASGI transport raises it);
- the answer is JSON: a Bundle, the created resource, or an OperationOutcome
  that fhir.resources accepts, with a status the gateway documents;
- a partner's input is kept exactly once, accepted or refused with a reason;
  a stranger's is not kept at all;
- no part of an If-None-Exist header reaches the control id.

Inputs: every file of ``corpus/fhir/`` and the repository's FHIR corpus,
mutated byte by byte, and JSON built from FHIR's own vocabulary. In the suite
each property runs 200 examples (a few seconds). A longer run::

    FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/fuzz/test_fuzz_fhir.py -p no:cacheprovider

(about 5 minutes per 20,000 examples here). A failure prints the smallest
input hypothesis found: add it to ``corpus/fhir/`` under a name that says what
it found (every file there is replayed on every run and seeds the
mutations), then fix the gateway.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.fhir.gateway import Gateway, create_router
from broker.pseudonym import Pseudonymizer
from broker.store.messages import Accepted, AcceptResult, Rejected
from tests.conftest import CORPUS
from tests.integration.test_fhir_gateway import GP_TOKEN, LAB_TOKEN, directory, lab_message

FUZZ_CORPUS = Path(__file__).parent / "corpus" / "fhir"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ROUTES = [
    "/fhir/$process-message",
    "/fhir",
    "/fhir/ServiceRequest",
    "/fhir/Task",
    "/fhir/DiagnosticReport",
    "/fhir/DocumentReference",
    "/fhir/Patient",
]
STATUSES = {200, 201, 202, 400, 401, 403, 404, 413, 415, 422}
MAX_BODY = 256 * 1024


def seeds() -> list[bytes]:
    """The fuzz corpus, the repository's FHIR examples and a translated lab result."""
    found = [p.read_bytes() for p in sorted(FUZZ_CORPUS.iterdir())]
    for folder in ("fhir-r4-examples", "fhir-referral-nhs-bars"):
        found += [p.read_bytes() for p in sorted((CORPUS / folder).glob("*.json"))]
    found.append(json.dumps(lab_message("FUZZ-SEED")).encode())
    return found


SEEDS = seeds()


class KeptInMemory:
    """The two calls the gateway makes on the message store, kept in lists."""

    def __init__(self) -> None:
        self.accepted: list[Accepted] = []
        self.rejected: list[Rejected] = []
        self.keys: dict[tuple[str, str], bytes] = {}

    async def accept(self, items: list[Accepted]) -> list[AcceptResult]:
        results = []
        for item in items:
            key = (item.envelope.sender or "", item.envelope.control_id)
            duplicate = key in self.keys
            self.keys.setdefault(key, item.answer)
            self.accepted.append(item)
            results.append(AcceptResult(item.envelope.message_id, duplicate, self.keys[key]))
        return results

    async def reject(self, items: list[Rejected]) -> None:
        self.rejected += items


DIRECTORY = directory()
LOOP = asyncio.new_event_loop()


def post(route: str, body: bytes, headers: dict[str, str]) -> tuple[httpx.Response, KeptInMemory]:
    kept = KeptInMemory()
    app = FastAPI()
    app.include_router(
        create_router(
            Gateway(
                store=kept,  # type: ignore[arg-type]
                directory=lambda: DIRECTORY,
                pseudonymizer=Pseudonymizer(b"f" * 32),
                max_body_bytes=MAX_BODY,
            )
        )
    )

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://carebroker") as c:
            return await c.post(route, content=body, headers=headers)

    return LOOP.run_until_complete(run()), kept


def check(route: str, body: bytes, token: str | None, condition: str | None = None) -> None:
    headers = {"Content-Type": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if condition:
        headers["If-None-Exist"] = condition
    response, kept = post(route, body, headers)
    assert response.status_code in STATUSES, (response.status_code, response.text[:500])
    answer: Any = response.json()
    assert isinstance(answer, dict) and answer.get("resourceType"), answer
    if response.status_code >= 400:
        OperationOutcome.model_validate(answer)
        assert all(i["severity"] == "error" and i["diagnostics"] for i in answer["issue"])
    if token not in (LAB_TOKEN, GP_TOKEN):
        assert response.status_code == 401
        assert not kept.accepted and not kept.rejected, "a stranger's input was kept"
        return
    assert len(kept.accepted) + len(kept.rejected) == 1, "a partner's input kept once"
    for refused in kept.rejected:
        assert refused.reason
    for accepted in kept.accepted:
        control_id = accepted.envelope.control_id
        if condition:
            assert condition not in control_id
            for part in condition.split("&"):
                value = part.partition("=")[2]
                if len(value) >= 4:
                    assert value not in control_id, "If-None-Exist criteria in the control id"


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Apply (position, bytes removed, bytes inserted) edits, positions wrapped."""
    out = bytearray(data)
    for position, removed, inserted in edits:
        at = position % (len(out) + 1)
        out[at : at + removed] = inserted
    return bytes(out[: MAX_BODY + 1024])


EDIT = st.tuples(
    st.integers(min_value=0, max_value=1 << 20),
    st.integers(min_value=0, max_value=8),
    st.one_of(
        st.binary(max_size=8),
        st.sampled_from(
            [b"{", b"}", b"[", b"]", b'"', b",", b":", b"null", b"\\u0000", b"\\ud800", b"1e999",
             b'"resourceType"', b'"entry"', b'"MessageHeader"', b'"sender"', b'"identifier"',
             b"\xef\xbb\xbf", b"\xff", b"[" * 200]
        ),
    ),
)  # fmt: skip

WORDS = st.sampled_from(
    [
        "resourceType", "type", "entry", "resource", "fullUrl", "request", "method", "url",
        "identifier", "system", "value", "id", "sender", "source", "endpoint", "name",
        "display", "reference", "focus", "eventUri", "eventCoding", "status", "intent",
        "subject", "contained", "organization", "meta", "extension", "valueString",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(
        ["Bundle", "message", "transaction", "MessageHeader", "Organization", "Patient",
         "ServiceRequest", "Task", "POST", "urn:carebroker:partner:labo-sud", "LABO-SUD",
         "CHU-MTP", "urn:oid:1.2.250.1.71.4.2.2", "340780477", "#x", "urn:uuid:1"]
    ),
)  # fmt: skip
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(WORDS, inner, max_size=6)),
    max_leaves=40,
)
DOCUMENTS = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Bundle", "ServiceRequest", "Task", "Patient", "X"])},
    optional={
        "type": st.sampled_from(["message", "transaction", "collection", 3]),
        "identifier": JSON_VALUES,
        "entry": st.lists(
            st.one_of(
                JSON_VALUES,
                st.fixed_dictionaries(
                    {"resource": st.dictionaries(WORDS, JSON_VALUES, max_size=6)},
                    optional={"fullUrl": SCALARS, "request": JSON_VALUES},
                ),
            ),
            max_size=4,
        ),
        "status": SCALARS,
        "intent": SCALARS,
        "subject": JSON_VALUES,
    },
)
TOKENS = st.sampled_from([LAB_TOKEN, GP_TOKEN, None, "guessed"])
CONDITIONS = st.one_of(
    st.none(),
    st.just("identifier=urn:oid:1.2.250.1.213.1.4.8|277076322082910&family=DUPONT"),
    st.text(alphabet="abc=&|%:?", max_size=30),
)


@pytest.mark.parametrize("seed", range(len(FUZZ_CORPUS_FILES := sorted(FUZZ_CORPUS.iterdir()))))
def test_every_corpus_input_gets_a_fhir_answer(seed: int) -> None:
    body = FUZZ_CORPUS_FILES[seed].read_bytes()
    for route in ROUTES[:3]:
        check(route, body, LAB_TOKEN)


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(EDIT, max_size=6),
    route=st.sampled_from(ROUTES),
    token=TOKENS,
    condition=CONDITIONS,
)
def test_mutated_fhir_gets_a_fhir_answer(
    seed: bytes,
    edits: list[tuple[int, int, bytes]],
    route: str,
    token: str | None,
    condition: str | None,
) -> None:
    check(route, mutate(seed, edits), token, condition)


@FUZZ
@given(document=DOCUMENTS, route=st.sampled_from(ROUTES), token=TOKENS, condition=CONDITIONS)
def test_fhir_shaped_json_gets_a_fhir_answer(
    document: dict[str, Any], route: str, token: str | None, condition: str | None
) -> None:
    check(route, json.dumps(document).encode(), token, condition)
