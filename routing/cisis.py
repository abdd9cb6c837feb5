"""CI-SIS document requests in routing: RCT recipients, and the MSSanté mail each one gets (pure).

Routing (``rules.route`` asks :func:`choose` for a message whose MSH-21 names
the CI-SIS profile, instead of the built-in result rules: the creator chose
the recipients, PRT by PRT, ``profils-messages.md``). Each ``PRT`` with
role ``RCT`` becomes one recipient:

- a directory partner when its address is a partner's MSSanté endpoint, or
  its person (PRT-5.1), organisation (PRT-8.10) or device (PRT-10.1) id names
  a partner with an endpoint: delivered over that partner's own endpoint
  (MLLP, FHIR, mailbox, or its MSSanté address);
- otherwise its MSSanté address (PRT-15.4): the recipient
  ``mssante:<address>`` (professional, organisation or application mailbox);
- the patient's address (``@patient.mssante.fr``, or an INS in PRT-5) only
  when DESTMSSANTEPAT is Y and the document is not invisible to the patient,
  as the recipient ``mssante:patient`` (its address is an INS: never in ids,
  logs or the audit trail);
- professionals only when DESTMSSANTEPS is Y.

A PRT left out is reported (``route explain``, operators) with why.

Rendering (``render.render_for`` calls :func:`render_mail` for a partner
with an MSSanté endpoint): the mail of ``adapters/mssante/mime.py`` with the
documents, their PDFs and the ``IHE_XDM.zip`` of ``adapters/mssante/xdm.py``.
A patient address is refused here too, whatever routed it, when the document
is invisible to the patient (defence in depth: design invariant, issue 15).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC

from adapters.hl7v2 import cisis
from adapters.hl7v2.er7 import Message
from adapters.mssante import mime, xdm
from adapters.mssante.cda import Code, InstanceId, Person
from broker.directory import MSSANTE_PREFIX, Directory, MssanteEndpoint, Partner
from broker.envelope import Envelope, ProviderRef
from broker.errors import MessageError

RULE = "mssante-rct"
PATIENT = MSSANTE_PREFIX + "patient"
_CACHE_MAX = 64
_cache: OrderedDict[uuid.UUID, cisis.Request] = OrderedDict()
# PV1-2 -> XDS contentTypeCode (mapping.md, "Lot de soumission"; JDV_J59).
_CONTENT_TYPES = {"I": "03", "O": "07", "R": "19", "N": "97", "E": "07"}
_CONTENT_SYSTEM = "1.2.250.1.213.1.1.4.2.280"
_NAMESPACE = uuid.UUID("7d1f0a3c-5a0e-4b6f-9c52-3f3c1e2b8a41")  # carebroker XDM ids
_DEFAULT_BODIES = {
    "F": "Veuillez trouver ci-joint le document « {title} ».",
    "C": "Le document « {title} » ci-joint remplace la version qui vous a été envoyée "
    "précédemment.",
    "D": "Le document « {title} » qui vous a été envoyé précédemment doit être supprimé : "
    "il a été retiré par son auteur.",
}


@dataclass(frozen=True)
class Choice:
    """One RCT that chose a recipient: the partner, the field that named it, its value."""

    partner: Partner
    field: str
    value: str


@dataclass(frozen=True)
class Left:
    """An RCT that chose nobody, and why."""

    field: str
    value: str
    why: str


def request_of(envelope: Envelope) -> cisis.Request | None:
    """Return the CI-SIS request a message carries, or None (not the profile).

    Raise ``cisis.CisisError`` when it claims the profile but is not a valid
    request (accepted before the check existed, or by another channel).
    Parsed once per message for its recipients' renders.
    """
    if envelope.format != "hl7v2" or not cisis.is_cisis_bytes(envelope.payload):
        return None
    cached = _cache.get(envelope.message_id)
    if cached is not None:
        _cache.move_to_end(envelope.message_id)
        return cached
    try:
        message = Message(envelope.payload.decode(envelope.charset))
    except (UnicodeDecodeError, LookupError) as exc:
        raise MessageError(f"{envelope.control_id} cannot be decoded") from exc
    if not cisis.is_cisis(message):
        return None
    request = cisis.read(message)
    _cache[envelope.message_id] = request
    if len(_cache) > _CACHE_MAX:
        _cache.popitem(last=False)
    return request


def choose(request: cisis.Request, directory: Directory) -> tuple[list[Choice], list[Left]]:
    """Return the recipients the RCT segments choose, and the RCTs left out with why."""
    chosen: list[Choice] = []
    left: list[Left] = []
    patients = 0
    for participant in request.recipients:
        where = participant.where
        if participant.is_patient:
            shown = _patient_shown(participant)
            if not request.flags.get("DESTMSSANTEPAT"):
                left.append(Left(where, shown, "skipped: DESTMSSANTEPAT is N"))
            elif not request.to_patient:
                left.append(Left(where, shown, "skipped: the document is invisible to the patient"))
            elif not participant.address:
                left.append(Left(where, shown, "names the patient without an MSSanté address"))
            else:
                patients += 1
                recipient = PATIENT if patients == 1 else f"{PATIENT}-{patients}"
                chosen.append(Choice(_mailbox(directory, recipient), where, shown))
            continue
        value = participant.address or participant.identifier
        if not request.to_professionals:
            left.append(Left(where, value, "skipped: DESTMSSANTEPS is N"))
            continue
        partner, field, matched = _partner_of(participant, directory)
        if partner is not None:
            chosen.append(Choice(partner, field, matched))
        elif participant.address:
            recipient = MSSANTE_PREFIX + participant.address
            chosen.append(Choice(_mailbox(directory, recipient), where, participant.address))
        else:
            left.append(Left(where, value, "is not in the directory and has no MSSanté address"))
    return chosen, left


def _mailbox(directory: Directory, recipient: str) -> Partner:
    partner = directory.partner(recipient)
    assert partner is not None  # mssante:... ids always resolve
    return partner


def _partner_of(
    participant: cisis.Participant, directory: Directory
) -> tuple[Partner | None, str, str]:
    """Return the directory partner an RCT names (address first), with the field and value."""
    n = participant.prt
    candidates: list[tuple[Partner | None, str, str]] = [
        (
            directory.by_mssante_address(participant.address),
            f"PRT({n})-15.4",
            participant.address,
        )
    ]
    for value, authority, field in (
        (participant.person_id, participant.person_authority, f"PRT({n})-5.1"),
        (participant.organisation_id, "", f"PRT({n})-8.10"),
        (participant.device_id, "", f"PRT({n})-10.1"),
    ):
        if value:
            ref = ProviderRef(source="PRT", role="RCT", id=value, authority=authority)
            candidates.append((directory.resolve(ref), field, value))
    for partner, field, value in candidates:
        if partner is not None and partner.endpoint is not None:
            return partner, field, value
    return None, "", ""


def _patient_shown(participant: cisis.Participant) -> str:
    """Return how a patient RCT is named for operators: never its address or INS."""
    return "(patient)@" + mime.PATIENT_DOMAIN if participant.address else "(patient)"


# --- the mail ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MailRender:
    """The mail for one recipient, its media type (with the DSN/MDN requests) and flags."""

    payload: bytes
    content_type: str
    flags: tuple[str, ...]


def render_mail(envelope: Envelope, recipient: Partner) -> MailRender:
    """Return the MSSanté mail of a CI-SIS request for ``recipient``; raise MessageError."""
    request = request_of(envelope)
    if request is None:
        raise MessageError(
            f"{recipient.id} reads MSSanté mail: only CI-SIS document requests "
            "(MSH-21 CISIS_CDA_HL7_V2) can be mailed"
        )
    address = _address_of(recipient, request)
    patient = mime.is_patient_address(address)
    if patient and not request.to_patient:
        raise MessageError(
            "the document is invisible to the patient (INVISIBLE_PATIENT) or not for the "
            "patient (DESTMSSANTEPAT): never mailed to a patient address"
        )
    if not patient and request.flags.get("MASQUE_PS"):
        raise MessageError("the document is hidden from professionals (MASQUE_PS=Y)")
    documents = [d.cda for d in request.documents]
    title = documents[0].header.title or request.documents[0].label
    body = request.bodies.get("patient" if patient else "ps") or _DEFAULT_BODIES[
        request.status
    ].format(title=title)
    sender = request.sender
    submission = xdm.Submission(
        unique_id=xdm.oid_of(uuid.uuid5(_NAMESPACE, f"{envelope.message_id}/{recipient.id}")),
        source_id=xdm.oid_of(uuid.uuid5(_NAMESPACE, envelope.receiving_facility or "carebroker")),
        submission_time=envelope.received_at.astimezone(UTC).strftime("%Y%m%d%H%M%S"),
        author=_person(sender) if sender is not None else None,
        intended_recipient=address,
        content_type=Code(_CONTENT_TYPES[request.patient_class], _CONTENT_SYSTEM)
        if request.patient_class in _CONTENT_TYPES
        else None,
        action=request.status if request.status in xdm.ACTIONS else None,
    )
    attachments: list[mime.Attachment] = []
    for index, document in enumerate(request.documents, 1):
        attachments.append(
            mime.Attachment(xdm.document_name(index), "application/xml", document.cda.data)
        )
        date = document.cda.header.effective_time[:8]
        for number, pdf in enumerate(document.cda.pdfs, 1):
            suffix = f"_{number}" if len(document.cda.pdfs) > 1 else ""
            name = f"{date}_{document.label or document.code}_{index}{suffix}.pdf"
            attachments.append(mime.Attachment(name, "application/pdf", pdf))
    attachments.append(
        mime.Attachment("IHE_XDM.zip", "application/zip", xdm.build_package(documents, submission))
    )
    mail = mime.Mail(
        to=address,
        subject=mime.SUBJECT_PREFIX + title,
        body=body,
        attachments=attachments,
        reply_to=request.reply_to,
        cda_codes=[d.cda.header.code.code for d in request.documents],
        qualified_ins=envelope.identity.ins_qualified
        and any(d.cda.header.ins is not None for d in request.documents),
        no_reply=request.no_reply,
    )
    requests = mime.Requests(notify=request.ack_reception, read_receipt=request.ack_reading)
    flags = ["mssante", f"documents:{len(documents)}"]
    if request.ack_reception:
        flags.append("ack_reception")
    if request.ack_reading:
        flags.append("ack_reading")
    if request.status != "F":
        flags.append({"C": "replaces", "D": "deletes"}[request.status])
    return MailRender(mime.build_mail(mail), requests.content_type(), tuple(flags))


def _address_of(recipient: Partner, request: cisis.Request) -> str:
    endpoint = recipient.endpoint
    if isinstance(endpoint, MssanteEndpoint) and endpoint.address:
        return endpoint.address
    if recipient.id.startswith(PATIENT):
        number = int(recipient.id.removeprefix(PATIENT).removeprefix("-") or 1)
        patients = [p for p in request.recipients if p.is_patient and p.address]
        if 0 < number <= len(patients):
            return patients[number - 1].address
    raise MessageError(f"{recipient.id}: no MSSanté address to mail")


def _person(participant: cisis.Participant) -> Person:
    return Person(
        id=InstanceId(participant.person_authority, participant.person_id)
        if participant.person_id
        else None,
        organisation_id=InstanceId("1.2.250.1.71.4.2.2", participant.organisation_id)
        if participant.organisation_id
        else None,
        organisation_name=participant.organisation_name,
    )
