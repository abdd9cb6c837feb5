"""The FHIR gateway: FHIR R4 messaging and REST creates in, durably, exactly once.

Routes (an ``APIRouter`` the ``fhir`` role adds to the HTTP app):

- ``POST /fhir/$process-message`` — a Bundle of type ``message``, MessageHeader
  first. Synchronous: a response message Bundle whose MessageHeader.response
  quotes the request and says ``ok``. ``?async=true``: 202 and an
  OperationOutcome (FHIR R4 messageheader-operation-process-message).
- ``POST /fhir/ServiceRequest|Task|DiagnosticReport|DocumentReference`` — a
  create; ``If-None-Exist`` makes it conditional (201 first, 200 after).
- ``POST /fhir`` — a ``transaction`` Bundle of such creates.
- ``GET /fhir/metadata`` — the CapabilityStatement.

Every POST follows design invariants 1-3, as MLLP does: authenticate the
partner (from the headers: a stranger's body is never read, nor kept, nor
audited; its refusal is counted in :mod:`broker.strangers`), read the body
(bounded), validate, then one
:meth:`MessageStore.accept` transaction stores the message, its outbox record,
the ``received`` audit event and the answer under the key (sender, "",
Bundle.identifier; a conditional create: a digest of its If-None-Exist
criteria, which may hold patient identifiers and never become an id); only
after the commit does the sender get a 2xx. A resend gets the stored answer,
not a second message. Refused input is stored with its
reason by :meth:`MessageStore.reject` and answered with an OperationOutcome:
400 (with the FHIRPath of the problem), 401/403, 413, 415, 422; a store
outage is 503 so the sender retries.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request, Response
from opentelemetry.trace import Span

from adapters.fhir import auth, extract
from adapters.fhir.capability import CREATE_TYPES, capability_statement
from adapters.fhir.outcome import FHIR_JSON, encode, information, outcome
from adapters.fhir.resources import Resources
from adapters.fhir.validate import FhirValidationError, Issue, parse_json, validate
from broker import redact, telemetry
from broker.directory import Directory, Partner
from broker.errors import StoreUnavailableError
from broker.ids import new_id_at
from broker.pseudonym import Pseudonymizer
from broker.store.messages import REJECTED_PAYLOAD_CAP, Accepted, MessageStore, Rejected
from broker.strangers import StrangerRecorder

log = logging.getLogger(__name__)
Json = dict[str, Any]
Mode = Literal["message", "create", "transaction", "unsupported"]
_MEDIA_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass
class Gateway:
    """What the gateway needs from the process: store, directory, pseudonymizer, limits."""

    store: MessageStore
    directory: Callable[[], Directory]
    pseudonymizer: Pseudonymizer
    max_body_bytes: int
    cert_header: str | None = None
    base_url: str | None = None
    strangers: StrangerRecorder | None = None


class Refused(Exception):
    """A request the gateway answers with an OperationOutcome and keeps as rejected."""

    def __init__(self, status: int, issues: list[Issue], reason: str, control_id: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.issues = issues
        self.reason = reason
        self.control_id = control_id


def create_router(gateway: Gateway) -> APIRouter:
    """Return the FHIR routes bound to ``gateway``."""
    router = APIRouter(prefix="/fhir", tags=["fhir"])

    @router.get("/metadata", summary="CapabilityStatement: what this gateway supports")
    async def metadata(request: Request) -> Response:
        statement = capability_statement(
            _base(gateway, request), datetime.now(UTC).strftime("%Y-%m-%d")
        )
        return Response(encode(statement), media_type=FHIR_JSON)

    @router.post("/$process-message", summary="FHIR messaging: a message Bundle in")
    async def process_message(request: Request) -> Response:
        return await _handle(gateway, request, "message", "Bundle")

    for kind in CREATE_TYPES:
        router.add_api_route(
            f"/{kind}",
            _create_endpoint(gateway, kind),
            methods=["POST"],
            summary=f"Create a {kind} (If-None-Exist honoured)",
        )

    @router.post("", summary="A transaction Bundle of creates")
    async def transaction(request: Request) -> Response:
        return await _handle(gateway, request, "transaction", "Bundle")

    @router.post("/{rest:path}", include_in_schema=False)
    async def unsupported(request: Request, rest: str) -> Response:
        return await _handle(gateway, request, "unsupported", rest.split("/")[0])

    return router


def _create_endpoint(gateway: Gateway, kind: str) -> Callable[[Request], Any]:
    async def create(request: Request) -> Response:
        return await _handle(gateway, request, "create", kind)

    create.__name__ = f"create_{kind}"
    return create


def _base(gateway: Gateway, request: Request) -> str:
    return gateway.base_url or str(request.base_url).rstrip("/") + "/fhir"


async def _read(request: Request, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` + 1 bytes; return (bytes, too large). Stop early when too large."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        # Keep what operators may look at (the store caps refused input at 1 MiB).
        kept = bytearray()
        async for chunk in request.stream():
            kept += chunk
            if len(kept) >= REJECTED_PAYLOAD_CAP:
                break
        return bytes(kept[:REJECTED_PAYLOAD_CAP]), True
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return bytes(body[:REJECTED_PAYLOAD_CAP]), True
    return bytes(body), False


async def _handle(gateway: Gateway, request: Request, mode: Mode, kind: str) -> Response:
    """Receive one POST: authenticate, validate, store durably, answer.

    Each POST is traced by an ``ingress fhir`` span, the root of the trace the
    message follows through Kafka, the router and delivery (its context goes
    into the envelope). The span carries ids, codes and the HTTP status only.
    """
    with telemetry.ingress_span("fhir", {"carebroker.fhir.interaction": mode}) as span:
        response = await _receive(gateway, request, mode, kind, span)
        span.set_attribute("http.response.status_code", response.status_code)
        return response


async def _receive(
    gateway: Gateway, request: Request, mode: Mode, kind: str, span: Span
) -> Response:
    message_id, received_at = new_id_at()
    directory = gateway.directory()
    who = auth.authenticate(request.headers, directory, gateway.cert_header)
    if isinstance(who, auth.Refusal):
        return _refuse_stranger(gateway, request, who)
    partner = who
    body, too_large = await _read(request, gateway.max_body_bytes)
    try:
        document, control_id = _admit(
            gateway, request, body, too_large, directory, mode, kind, message_id, partner
        )
    except Refused as refused:
        return await _refuse(
            gateway, refused, body, message_id, received_at, partner, refused.control_id
        )
    envelope = extract.build_envelope(
        document,
        payload=body,
        sender=partner.id,
        control_id=control_id,
        message_id=message_id,
        received_at=received_at,
        pseudonymizer=gateway.pseudonymizer,
    )
    trace = telemetry.current_context()
    if trace:
        envelope = envelope.model_copy(update={"trace": trace})
    if span.is_recording():
        span.set_attributes(redact.span_attributes(envelope))
    asynchronous = request.query_params.get("async", "").lower() == "true"
    answer = _answer(gateway, request, document, mode, kind, message_id, received_at, asynchronous)
    try:
        [result] = await gateway.store.accept([Accepted(envelope, encode(answer), actor="fhir")])
    except StoreUnavailableError:
        log.warning("message store unavailable; FHIR input refused with 503")
        return _store_down()
    log.info(
        "fhir message accepted",
        extra={
            "message_id": str(result.message_id),
            "partner": partner.id,
            "message_type": envelope.message_type,
            "duplicate": result.duplicate,
        },
    )
    return _respond(gateway, request, result.answer, mode, result.duplicate)


def _admit(
    gateway: Gateway,
    request: Request,
    body: bytes,
    too_large: bool,
    directory: Directory,
    mode: Mode,
    kind: str,
    message_id: uuid.UUID,
    who: Partner,
) -> tuple[Json, str]:
    """Return (document, control id) of a partner's acceptable input; raise Refused if not."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _MEDIA_TYPES:
        text = f"content type {media or '(none)'} not supported; send application/fhir+json"
        raise Refused(415, [Issue("", text, "not-supported")], text)
    if too_large:
        text = f"body larger than {gateway.max_body_bytes} bytes"
        raise Refused(413, [Issue("", text, "too-costly")], text)
    if mode == "unsupported":
        text = f"POST /fhir/{kind} is not supported (see /fhir/metadata)"
        raise Refused(404, [Issue("", text, "not-supported")], text)
    document = _valid_document(body, mode, kind)
    control_id = _control_id(document, mode, request, message_id, gateway.pseudonymizer)
    refusal = auth.check_sender(document, directory, who)
    if refusal is not None:
        raise Refused(
            refusal.status,
            [Issue(refusal.expression, refusal.text, refusal.code)],
            refusal.text,
            control_id,
        )
    try:
        _business_rules(document, mode)
    except Refused as refused:
        refused.control_id = control_id
        raise
    return document, control_id


def _valid_document(body: bytes, mode: Mode, kind: str) -> Json:
    """Parse and validate; check what the gateway itself relies on (type, MessageHeader)."""
    try:
        document = parse_json(body)
        validate(document)
    except FhirValidationError as exc:
        raise Refused(400, exc.issues, f"invalid FHIR: {exc}") from None
    actual = document["resourceType"]
    if actual != kind:
        text = f"expected a {kind}, got a {actual}"
        raise Refused(400, [Issue("resourceType", text, "invalid")], text)
    if mode == "message":
        if document.get("type") != "message":
            text = "Bundle.type must be 'message' for $process-message"
            raise Refused(400, [Issue("Bundle.type", text, "invalid")], text)
        entries = document.get("entry") or []
        first = entries[0].get("resource") if entries else None
        if not isinstance(first, dict) or first.get("resourceType") != "MessageHeader":
            text = "the first entry of a message Bundle must be a MessageHeader"
            raise Refused(400, [Issue("Bundle.entry[0].resource", text, "structure")], text)
        if not _message_identity(document):
            text = "Bundle.identifier (or Bundle.id) is required: it is how a resend is recognised"
            raise Refused(400, [Issue("Bundle.identifier", text, "required")], text)
    if mode == "transaction":
        if document.get("type") != "transaction":
            text = "POST /fhir takes a Bundle of type 'transaction'"
            raise Refused(400, [Issue("Bundle.type", text, "invalid")], text)
        for index, entry in enumerate(document.get("entry") or []):
            request = entry.get("request") or {}
            target = (entry.get("resource") or {}).get("resourceType")
            if request.get("method") != "POST" or target not in CREATE_TYPES:
                text = "only POST (create) of " + ", ".join(CREATE_TYPES) + " is supported"
                path = f"Bundle.entry[{index}].request"
                raise Refused(422, [Issue(path, text, "not-supported")], text)
    return document


def _business_rules(document: Json, mode: Mode) -> None:
    """Refuse (422) content that is valid FHIR but cannot be acted on."""
    if mode != "message":
        return
    resources = Resources(document)
    header = document["entry"][0]["resource"]
    for index, reference in enumerate(header.get("focus", []) or []):
        if resources.resolve(reference) is None:
            text = "MessageHeader.focus must point at a resource in the Bundle"
            path = f"Bundle.entry[0].resource.focus[{index}]"
            raise Refused(422, [Issue(path, text, "business-rule")], text)


def _message_identity(document: Json) -> str:
    """Return how a message names itself: Bundle.identifier, else Bundle.id / MessageHeader.id.

    R4 reliable messaging keys on Bundle.identifier; some R4 profiles (NHS BaRS)
    leave it out and rely on Bundle.id and MessageHeader.id, so those are read
    next, prefixed so they can never collide with an identifier.
    """
    identifier = document.get("identifier") or {}
    if identifier.get("value"):
        system = identifier.get("system", "")
        return f"{system}|{identifier['value']}" if system else str(identifier["value"])
    if document.get("id"):
        return f"Bundle/{document['id']}"
    header = ((document.get("entry") or [{}])[0].get("resource")) or {}
    return f"MessageHeader/{header['id']}" if header.get("id") else ""


def _control_id(
    document: Json,
    mode: Mode,
    request: Request,
    message_id: uuid.UUID,
    pseudonymizer: Pseudonymizer,
) -> str:
    """Return the de-duplication id: Bundle.identifier, the If-None-Exist digest, or a new id."""
    identity = _message_identity(document) if mode != "create" else ""
    if identity and (mode == "message" or (document.get("identifier") or {}).get("value")):
        return identity
    condition = request.headers.get("if-none-exist", "").strip()
    if mode == "create" and condition:
        # A conditional create is answered once per criteria: same sender, same
        # criteria (parameters in any order) -> the resource created first. The
        # criteria name patients (identifier=, name=, birthdate=): only their
        # keyed digest becomes the id operators and viewers see.
        criteria = urlencode(sorted(parse_qsl(condition.lstrip("?"), keep_blank_values=True)))
        digest = pseudonymizer.lane("If-None-Exist", document["resourceType"], criteria)
        return f"{document['resourceType']}?If-None-Exist={digest}"
    return f"urn:uuid:{message_id}"


def _answer(
    gateway: Gateway,
    request: Request,
    document: Json,
    mode: Mode,
    kind: str,
    message_id: uuid.UUID,
    received_at: datetime,
    asynchronous: bool,
) -> Json:
    """Return the answer stored with the message, which a resend gets back."""
    stamp = received_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    accepted = f"accepted as message {message_id}"
    if mode == "message":
        if asynchronous:
            return information(accepted)
        return _response_message(gateway, request, document, message_id, stamp, accepted)
    if mode == "create":
        return {**document, "id": str(message_id), "meta": {"versionId": "1", "lastUpdated": stamp}}
    entries = []
    for index, entry in enumerate(document.get("entry") or []):
        resource_type = entry["resource"]["resourceType"]
        resource_id = str(uuid.uuid5(message_id, str(index)))
        entries.append(
            {
                "response": {
                    "status": "201 Created",
                    "location": f"{resource_type}/{resource_id}/_history/1",
                    "lastModified": stamp,
                }
            }
        )
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def _response_message(
    gateway: Gateway,
    request: Request,
    document: Json,
    message_id: uuid.UUID,
    stamp: str,
    text: str,
) -> Json:
    """The synchronous $process-message answer: a message whose MessageHeader.response is ok."""
    header = document["entry"][0]["resource"]
    identifier = (document.get("identifier") or {}).get("value", "")
    quoted = header.get("id") or document.get("id") or str(identifier).removeprefix("urn:uuid:")
    if not _ID.fullmatch(str(quoted)):
        quoted = str(uuid.uuid5(message_id, str(identifier)))
    source = header.get("source") or {}
    response_id = str(uuid.uuid5(message_id, "response"))
    outcome_id = str(uuid.uuid5(message_id, "outcome"))
    return {
        "resourceType": "Bundle",
        "id": response_id,
        "type": "message",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{response_id}"},
        "timestamp": stamp,
        "entry": [
            {
                "fullUrl": f"urn:uuid:{response_id}",
                "resource": {
                    "resourceType": "MessageHeader",
                    "id": response_id,
                    **(
                        {"eventCoding": header["eventCoding"]}
                        if "eventCoding" in header
                        else {"eventUri": header.get("eventUri", "")}
                    ),
                    "destination": [
                        {k: v for k, v in source.items() if k in ("name", "endpoint", "_endpoint")}
                    ],
                    "source": {"name": "carebroker", "endpoint": _base(gateway, request)},
                    "response": {
                        "identifier": quoted,
                        "code": "ok",
                        "details": {"reference": f"urn:uuid:{outcome_id}"},
                    },
                },
            },
            {
                "fullUrl": f"urn:uuid:{outcome_id}",
                "resource": {**information(text), "id": outcome_id},
            },
        ],
    }


def _respond(
    gateway: Gateway, request: Request, answer: bytes, mode: Mode, duplicate: bool
) -> Response:
    """Answer with the stored answer; its kind says the status (resends get the same)."""
    if mode == "create":
        document = parse_json(answer)
        location = (
            f"{_base(gateway, request)}/{document['resourceType']}/{document['id']}/_history/1"
        )
        return Response(
            answer,
            status_code=200 if duplicate else 201,
            media_type=FHIR_JSON,
            headers={"Location": location, "ETag": 'W/"1"'},
        )
    status = 202 if b'"resourceType":"OperationOutcome"' in answer[:64] else 200
    return Response(answer, status_code=status, media_type=FHIR_JSON)


async def _refuse(
    gateway: Gateway,
    refused: Refused,
    body: bytes,
    message_id: uuid.UUID,
    received_at: datetime,
    partner: Partner | None,
    control_id: str,
) -> Response:
    """Keep refused input with its reason (design invariant 2), then answer it."""
    answer = encode(outcome(refused.issues))
    try:
        await gateway.store.reject(
            [
                Rejected(
                    message_id=message_id,
                    received_at=received_at,
                    channel="fhir",
                    format="fhir",
                    payload=body,
                    reason=refused.reason,
                    answer=answer,
                    sender=partner.id if partner else None,
                    control_id=control_id,
                    detail={
                        "status": refused.status,
                        "expression": [i.expression for i in refused.issues if i.expression][:10],
                    },
                    actor="fhir",
                )
            ]
        )
    except StoreUnavailableError:
        log.warning("message store unavailable; refused FHIR input answered 503")
        return _store_down()
    log.info(
        "fhir input refused",
        extra={
            "message_id": str(message_id),
            "partner": partner.id if partner else "-",
            "status": refused.status,
        },
    )
    # What is left of a body too large is not read: the connection cannot go on.
    headers = {"Connection": "close"} if refused.status == 413 else {}
    return Response(answer, status_code=refused.status, media_type=FHIR_JSON, headers=headers)


def _refuse_stranger(gateway: Gateway, request: Request, refusal: auth.Refusal) -> Response:
    """Answer 401 to a request nobody's credential vouches for: its body unread, nothing kept.

    Counted in the strangers' record (client address, reason, declared size),
    not stored as a message nor audited: 200 guessed tokens used to add 200
    messages of up to 1 MiB each, and 200 audit events.
    """
    declared = request.headers.get("content-length", "")
    size = int(declared) if declared.isdigit() else 0
    if gateway.strangers is not None:
        address = request.client.host if request.client else ""
        gateway.strangers.note(address, "fhir", refusal.reason or "refused", size)
    issue = Issue(refusal.expression, refusal.text, refusal.code)
    headers = {"WWW-Authenticate": 'Bearer realm="carebroker"'}
    if size or "transfer-encoding" in request.headers:
        headers["Connection"] = "close"  # the body is not read: the connection cannot go on
    return Response(
        encode(outcome([issue])), status_code=refusal.status, media_type=FHIR_JSON, headers=headers
    )


def _store_down() -> Response:
    issue = Issue("", "message store unavailable; nothing was accepted, retry later", "transient")
    return Response(
        encode(outcome([issue])),
        status_code=503,
        media_type=FHIR_JSON,
        headers={"Retry-After": "5"},
    )
