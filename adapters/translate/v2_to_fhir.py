"""Translate an HL7 v2 message into a FHIR R4 message Bundle (HL7 v2-to-FHIR IG).

The IG's message maps (../shared/corpus/mappings/v2-to-fhir/messages/) say
which segment becomes which resource; its segment maps say field by field how.
carebroker follows them for ADT (A01, A02, A03, A04, A08, A28, A31, A40),
ORU^R01, REF^I12, OML^O21, ORM^O01, MDM^T02 and SIU^S12, reading the message
segment by segment with the lazy ER7 reader and keeping the group context
(the current order, report, observation) the way the message structures nest.

The result is a Bundle of type ``message`` (MSH[Bundle], MSH[MessageHeader]):
MessageHeader first, with event, source, destination and focus, then the
resources, then a Provenance of the translation. Nothing is dropped silently:
every valued field carebroker does not map, and every segment it does not
translate, is listed in :attr:`Conversion.warnings` and in that Provenance
(extension ``urn:carebroker:fhir:unmapped-v2``), by location only, never by
value (design invariant 6).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.hl7v2.er7 import NULL, Message, Segment
from adapters.translate import concept_maps as maps
from adapters.translate.bundle import BundleBuilder, party_identity, validate_bundle
from adapters.translate.datatypes import (
    Clock,
    Json,
    dtm,
    first,
    hd_system,
    instant,
    now_instant,
    organization_hd,
    prune,
    text,
)
from adapters.translate.vocabulary import V2_0003
from broker.errors import MessageError

UNMAPPED_URL = "urn:carebroker:fhir:unmapped-v2"
SUPPORTED = frozenset(
    {
        "ADT^A01",
        "ADT^A02",
        "ADT^A03",
        "ADT^A04",
        "ADT^A08",
        "ADT^A28",
        "ADT^A31",
        "ADT^A40",
        "ORU^R01",
        "REF^I12",
        "OML^O21",
        "ORM^O01",
        "MDM^T02",
        "SIU^S12",
    }
)


@dataclass
class Conversion:
    """A translated message: the Bundle and what could not be mapped (locations only)."""

    bundle: Json
    warnings: list[str]
    message_type: str


@dataclass
class Order:
    """One order group: its ServiceRequest and, for results, its DiagnosticReport."""

    request: Json
    request_ref: str
    report: Json | None = None
    report_ref: str = ""
    has_obr: bool = False
    specimens: list[str] = field(default_factory=list)
    observations: list[Json] = field(default_factory=list)


@dataclass
class Context:
    """The state of one translation: builder, clock, and the group being read."""

    message: Message
    family: str
    trigger: str
    builder: BundleBuilder
    clock: Clock
    patient: Json | None = None
    patient_ref: str = ""
    encounter: Json | None = None
    encounter_ref: str = ""
    order: Order | None = None
    observation: Json | None = None
    referral: Json | None = None
    referral_ref: str = ""
    task: Json | None = None
    document: Json | None = None
    documents: list[Json] = field(default_factory=list)
    appointment: Json | None = None
    note_target: Json | None = None
    focus: list[str] = field(default_factory=list)
    needs_subject: list[tuple[Json, str]] = field(default_factory=list)
    index: int = 0
    orders: list[Order] = field(default_factory=list)
    unmapped: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def time(self, value: str, location: str) -> str | None:
        """Return a FHIR dateTime for a v2 time, reporting an invalid one by location."""
        if not value:
            return None
        result = dtm(value, self.clock)
        if result is None:
            self.problems.append(f"{location} is not a valid date/time; left out")
        return result

    def party(self, resource: Json | None) -> str:
        """Add a Practitioner/Organization once per identity; return its reference or ""."""
        if resource is None:
            return ""
        return self.builder.add_shared(resource, party_identity(resource))

    def about_patient(self, resource: Json, element: str = "subject") -> None:
        """Point ``element`` of a resource at the patient, now or when PID is read."""
        self.needs_subject.append((resource, element))


Handler = Callable[[Context, Segment], set[int]]


def convert(
    message: Message,
    *,
    timezone: str | None = None,
    recorded: str | None = None,
    validate: bool = True,
) -> Conversion:
    """Translate one HL7 v2 message; raise MessageError when it cannot be translated.

    ``timezone`` is the sender's zone (IANA name or ``+hh:mm``) for times sent
    without an offset; ``recorded`` the Provenance time (default: now).
    """
    from adapters.translate import v2_documents, v2_orders, v2_patient

    handlers: dict[str, Handler] = {
        **v2_patient.HANDLERS,
        **v2_orders.HANDLERS,
        **v2_documents.HANDLERS,
    }
    msh = message.msh
    message_type = message.message_type
    family, _, trigger = message_type.partition("^")
    if not family or not trigger:
        raise MessageError("MSH-9 has no message type and trigger event", location="MSH-9")
    msh7 = text(msh, 7)
    offset = msh7[-5:] if len(msh7) > 5 and msh7[-5] in "+-" else ""
    ctx = Context(
        message=message,
        family=family,
        trigger=trigger,
        builder=BundleBuilder("|".join((msh.get(3), msh.get(4), message.control_id, msh.get(7)))),
        clock=Clock(timezone, offset),
    )
    header = _message_header(ctx, msh)
    header_ref = f"urn:uuid:{header['id']}"
    if message_type not in SUPPORTED:
        ctx.problems.append(f"{message_type} has no carebroker mapping; generic translation")
    for index, segment in enumerate(message.segments):
        if segment.name in ("MSH", "SFT"):
            continue
        handler = handlers.get(segment.name)
        if handler is None:
            ctx.unmapped[f"{segment.name} segment"] += 1
            continue
        ctx.index = index
        used = handler(ctx, segment)
        _report_unmapped(ctx, segment, used, index)
    _finish(ctx, header)
    if ctx.clock.guessed:
        ctx.problems.append("times without an offset were read as UTC (no MSH-7 offset)")
    warnings = ctx.problems + [
        f"{where} not mapped" + (f" ({count}x)" if count > 1 else "")
        for where, count in ctx.unmapped.items()
    ]
    provenance = _provenance(ctx, header_ref, recorded or now_instant(), warnings)
    entries = [header, *ctx.builder.entries, provenance]
    bundle: Json = {
        "resourceType": "Bundle",
        "id": ctx.builder.make_id("Bundle"),
        "meta": {"profile": []},
        "type": "message",
        "identifier": {
            "system": header["source"].get("endpoint", "urn:ietf:rfc:3986"),
            "value": message.control_id,
        },
        "timestamp": instant(ctx.time(msh7, "MSH-7")),
        "entry": [
            {
                "fullUrl": f"urn:uuid:{resource['id']}",
                "resource": prune(
                    {"resourceType": resource["resourceType"], "id": resource["id"], **resource}
                ),
            }
            for resource in entries
        ],
    }
    bundle = prune(bundle)
    if validate:
        validate_bundle(bundle)
    return Conversion(bundle=bundle, warnings=warnings, message_type=message_type)


def _report_unmapped(ctx: Context, segment: Segment, used: set[int], index: int) -> None:
    for n, raw in enumerate(segment.fields):
        if n == 0 or n in used or not raw.strip() or raw == NULL:
            continue
        ctx.unmapped[f"{segment.name}-{n}"] += 1


def _message_header(ctx: Context, msh: Segment) -> Json:
    """MSH (+ first SFT) -> MessageHeader (MSH[MessageHeader], SFT[MessageHeader])."""
    application = first(msh, 3)
    source_endpoint = (
        hd_system(application.c(1), application.c(2), application.c(3)) if application else ""
    )
    receiving = first(msh, 5)
    sender = organization_hd(first(msh, 4))
    receiver = organization_hd(first(msh, 6))
    sft = ctx.message.segment("SFT")
    code = ctx.trigger
    source: Json = {
        "name": application.c(1) if application else "",
        "software": text(sft, 3),
        "version": text(sft, 2),
        **_endpoint(source_endpoint),
    }
    destination: Json = {
        "name": receiving.c(1) if receiving else "",
        **_endpoint(hd_system(receiving.c(1), receiving.c(2), receiving.c(3)) if receiving else ""),
        "receiver": {"reference": ctx.party(receiver)} if receiver else None,
    }
    processing = text(msh, 11)
    header: Json = {
        "resourceType": "MessageHeader",
        "id": ctx.builder.make_id("MessageHeader"),
        "meta": {
            "tag": [
                {
                    "system": maps.PROCESSING_ID[processing][2],
                    "code": processing,
                    "display": maps.PROCESSING_ID[processing][1],
                }
            ]
            if processing in maps.PROCESSING_ID
            else []
        },
        "eventCoding": {
            "system": V2_0003,
            "code": code,
            "display": msh.get(9).replace(msh.enc.subcomponent, "^"),
        },
        "source": source,
        "destination": [destination],
        "sender": {"reference": ctx.party(sender)} if sender else None,
    }
    return header


def _endpoint(value: str) -> Json:
    """Return ``endpoint``, or the IG's data-absent-reason when MSH-3/5 are empty (MSH-24/25)."""
    if value:
        return {"endpoint": value}
    return {
        "_endpoint": {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                    "valueCode": "unknown",
                }
            ]
        }
    }


def _finish(ctx: Context, header: Json) -> None:
    """Tie the resources together once every segment is read: subjects, focus, results."""
    patient = {"reference": ctx.patient_ref} if ctx.patient_ref else None
    for resource, element in ctx.needs_subject:
        if element == "target":  # EVN's Provenance: about the patient and the visit
            targets = [r for r in (ctx.patient_ref, ctx.encounter_ref) if r]
            resource["target"] = [{"reference": r} for r in targets] or [
                {"reference": f"urn:uuid:{header['id']}"}
            ]
            continue
        if element == "participant":  # Appointment: the patient attends
            if patient is not None:
                resource.setdefault("participant", []).insert(
                    0, {"actor": dict(patient), "status": "accepted"}
                )
            continue
        if patient is not None and element not in resource:
            resource[element] = dict(patient)
        if ctx.encounter_ref and "encounter" in _ENCOUNTER_OF.get(resource["resourceType"], ()):
            resource.setdefault("encounter", {"reference": ctx.encounter_ref})
    for resource, element in ctx.needs_subject:
        if element not in resource and element in _REQUIRED_SUBJECT.get(
            resource["resourceType"], ()
        ):
            # FHIR requires a subject; a message without PID says nothing about whom.
            resource[element] = {"display": "patient not identified in the message"}
            ctx.problems.append(f"{resource['resourceType']} has no patient (no PID segment)")
    from adapters.translate.v2_documents import finish_document

    for document in ctx.documents:
        finish_document(document)
    if not ctx.focus and ctx.patient_ref:
        ctx.focus.append(ctx.patient_ref)
    header["focus"] = [{"reference": ref} for ref in dict.fromkeys(ctx.focus)]


_ENCOUNTER_OF = {
    "Observation": ("encounter",),
    "DiagnosticReport": ("encounter",),
    "ServiceRequest": ("encounter",),
    "Condition": ("encounter",),
    "Procedure": ("encounter",),
}
_REQUIRED_SUBJECT = {
    "ServiceRequest": ("subject",),
    "Encounter": (),
    "RelatedPerson": ("patient",),
    "AllergyIntolerance": ("patient",),
    "Condition": ("subject",),
    "Procedure": ("subject",),
}


def _provenance(ctx: Context, header_ref: str, recorded: str, warnings: list[str]) -> Json:
    """The translation's Provenance (MSH[Provenance-Transformation]) with unmapped parts."""
    return {
        "resourceType": "Provenance",
        "id": ctx.builder.make_id("Provenance/transformation"),
        "extension": [{"url": UNMAPPED_URL, "valueString": w} for w in warnings],
        "target": [{"reference": header_ref}],
        "recorded": recorded,
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "CREATE",
                    "display": "create",
                }
            ],
            "text": "HL7 v2 to FHIR R4 translation (carebroker)",
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "assembler",
                        }
                    ]
                },
                "who": {"display": "carebroker"},
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {"value": ctx.message.control_id},
                    "display": f"HL7 v2 {ctx.message.message_type} message",
                },
            }
        ],
    }


__all__ = ["SUPPORTED", "Context", "Conversion", "Order", "convert"]
