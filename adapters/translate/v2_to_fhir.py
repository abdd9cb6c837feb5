"""Translate an HL7 v2 message into a FHIR R4 message Bundle (HL7 v2-to-FHIR IG).

The IG's message maps (../shared/corpus/mappings/v2-to-fhir/messages/) say
which segment becomes which resource; its segment maps say field by field how.
carebroker reads the message segment by segment with the lazy ER7 reader and
keeps the group context (the patient, the visit, the current order, report,
observation, specimen, document, appointment) the way the message structures
nest, so one set of segment handlers serves every message type: ADT, BAR,
DFT, ORU, OUL, OML, ORM, OMG, RDE, REF, RRI, MDM, SIU, VXU.

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
from typing import Any

from adapters.hl7v2.er7 import NULL, Message, Segment
from adapters.translate.bundle import BundleBuilder, validate_bundle
from adapters.translate.datatypes import (
    Clock,
    Json,
    dtm_exact,
    first,
    hd_uri,
    instant,
    now_instant,
    prune,
    text,
    time_extension,
)
from broker.errors import MessageError

UNMAPPED_URL = "urn:carebroker:fhir:unmapped-v2"
# Message types the IG's message maps (or carebroker's family reading) cover; any
# other type is still translated segment by segment, with a warning.
SUPPORTED = frozenset(
    {
        *(f"ADT^A{n:02d}" for n in (*range(1, 14), 28, 31, 40)),
        "ADT^A15",
        "ADT^A25",
        "ADT^A27",
        "ADT^A29",
        "ADT^A45",
        "ADT^A60",
        "BAR^P01",
        "DFT^P03",
        "ORU^R01",
        "OUL^R22",
        "OUL^R24",
        "OML^O21",
        "ORM^O01",
        "OMG^O19",
        "RDE^O11",
        "REF^I12",
        "REF^I13",
        "REF^I14",
        "RRI^I12",
        *(f"MDM^T{n:02d}" for n in range(1, 12)),
        *(f"SIU^S{n}" for n in range(12, 27)),
        "VXU^V04",
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
    orc: Segment | None = None
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
    account_ref: str = ""
    coverage: Json | None = None
    order: Order | None = None
    observation: Json | None = None
    observation_ref: str = ""
    specimen: Json | None = None
    specimen_ref: str = ""
    referral: Json | None = None
    referral_ref: str = ""
    task: Json | None = None
    document: Json | None = None
    document_ref: str = ""
    documents: list[Json] = field(default_factory=list)
    appointment: Json | None = None
    immunization: Json | None = None
    medication_request: Json | None = None
    prescription: Json | None = None
    service_request: Json | None = None
    episode: Json | None = None
    linkage: Json | None = None
    response: Json | None = None
    procedure: Json | None = None
    subscriber: Json | None = None
    note_target: Json | None = None
    scope: str = "message"
    focus: list[str] = field(default_factory=list)
    needs_subject: list[tuple[Json, str]] = field(default_factory=list)
    index: int = 0
    orders: list[Order] = field(default_factory=list)
    unmapped: Counter[str] = field(default_factory=Counter)
    times: dict[str, tuple[str | None, bool]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def time(self, value: str, location: str) -> str | None:
        """Return a FHIR dateTime for a v2 time, reporting an invalid one by location."""
        if not value:
            return None
        result, _ = self.read_time(value)
        if result is None:
            self.problems.append(f"{location} is not a valid date/time; left out")
        return result

    def set_time(self, resource: Json, element: str, value: str, location: str) -> str | None:
        """Set ``element`` to a v2 time, keeping the v2 form when FHIR needed to add to it.

        A time sent without an offset (or without seconds) gains them in FHIR;
        the originalText extension on the element keeps what the sender wrote,
        so FHIR -> v2 gives back exactly that (precision and lack of offset).
        """
        if not value:
            return None
        result, widened = self.read_time(value)
        if result is None:
            self.problems.append(f"{location} is not a valid date/time; left out")
            return None
        resource[element] = result
        if widened:
            resource["_" + element] = time_extension(value.split("^")[0].strip())
        return result

    def read_time(self, value: str) -> tuple[str | None, bool]:
        """Read a v2 time once per message: OBR-7, OBX-14 ... repeat the same few times."""
        found = self.times.get(value)
        if found is None:
            found = self.times[value] = dtm_exact(value, self.clock)
        return found

    def add(self, resource: Json, key: str) -> str:
        """Add a resource; return its reference."""
        return self.builder.add(resource, key)

    def about_patient(self, resource: Json, element: str = "subject") -> None:
        """Point ``element`` of a resource at the patient, now or when PID is read."""
        self.needs_subject.append((resource, element))


Handler = Callable[[Context, Segment], set[int]]
_HANDLERS: dict[str, Handler] = {}


def _handlers() -> dict[str, Handler]:
    """Return the segment handlers, imported once (the modules import this one)."""
    if not _HANDLERS:
        from adapters.translate import (
            v2_documents,
            v2_finance,
            v2_header,
            v2_orders,
            v2_patient,
            v2_pharmacy,
            v2_results,
            v2_scheduling,
            v2_visit,
        )

        for module in (
            v2_header,
            v2_patient,
            v2_visit,
            v2_finance,
            v2_orders,
            v2_results,
            v2_pharmacy,
            v2_documents,
            v2_scheduling,
        ):
            _HANDLERS.update(module.HANDLERS)
    return _HANDLERS


def convert(
    message: Message,
    *,
    timezone: str | None = None,
    recorded: str | None = None,
    validate: bool = True,
) -> Conversion:
    """Translate one HL7 v2 message; raise MessageError when it cannot be translated.

    ``timezone`` is the sender's zone (IANA name or ``+hh:mm``) for times sent
    without an offset; ``recorded`` the Provenance time (default: now);
    ``validate`` runs fhir.resources validation of the result (the caller may
    sample it: :mod:`adapters.translate.sampling`).
    """
    from adapters.translate import v2_header

    handlers = _handlers()
    msh = message.msh
    message_type = message.message_type
    family, _, trigger = message_type.partition("^")
    trigger = trigger.partition("^")[0]  # MSH-9 written with "^" whatever MSH-2 says
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
    header = v2_header.message_header(ctx, msh)
    if message_type not in SUPPORTED:
        ctx.problems.append(f"{message_type} has no carebroker mapping; generic translation")
    unmapped = ctx.unmapped
    for index, segment in enumerate(message.segments):
        if index == 0:
            continue
        handler = handlers.get(segment.name)
        if handler is None:
            unmapped[f"{segment.name} segment"] += 1
            continue
        ctx.index = index
        used = handler(ctx, segment)
        fields = segment.fields
        for n in range(1, len(fields)):
            raw = fields[n]
            if raw and n not in used and raw != NULL and raw.strip():
                unmapped[f"{segment.name}-{n}"] += 1
    v2_header.finish(ctx, header)
    if ctx.clock.guessed:
        ctx.problems.append("times without an offset were read as UTC (no MSH-7 offset)")
    warnings = ctx.problems + [
        f"{where} not mapped" + (f" ({count}x)" if count > 1 else "")
        for where, count in unmapped.items()
    ]
    provenance = _provenance(ctx, f"urn:uuid:{header['id']}", recorded or now_instant(), warnings)
    entries = [header, *ctx.builder.entries, provenance]
    bundle: Json = {
        "resourceType": "Bundle",
        "id": ctx.builder.make_id("Bundle"),
        "type": "message",
        "identifier": {
            "system": header["source"].get("endpoint")
            or hd_uri(first(msh, 3))
            or "urn:ietf:rfc:3986",
            "value": message.control_id,
        }
        if message.control_id
        else None,
        "timestamp": instant(ctx.time(msh7, "MSH-7")),
        "entry": [
            {
                "fullUrl": f"urn:uuid:{resource['id']}",
                # Handlers build with plain dicts; each resource is pruned once, here.
                "resource": prune(
                    {"resourceType": resource["resourceType"], "id": resource["id"], **resource}
                ),
            }
            for resource in entries
        ],
    }
    for key in ("identifier", "timestamp"):  # the entries are pruned above
        if bundle[key] is None:
            del bundle[key]
    if validate:
        validate_bundle(bundle)
    return Conversion(bundle=bundle, warnings=warnings, message_type=message_type)


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


def reference(ref: str) -> dict[str, Any] | None:
    """Return a Reference element for a ``urn:uuid:`` reference, or None for ""."""
    return {"reference": ref} if ref else None


__all__ = ["SUPPORTED", "Context", "Conversion", "Order", "convert", "reference"]
