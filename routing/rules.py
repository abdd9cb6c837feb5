"""Clinical routing: who must receive a message, and why (pure: envelope + directory).

No I/O here: the router, ``carebroker route explain`` and the tests call the
same :func:`route`, so what an interface team sees before go-live is what
production does. Each recipient comes with the rules that chose it and the
message fields (and the identifier values, never patient data) that matched.

Built-in clinical rules, by kind of message (HL7 v2.5.1 field names; FHIR
input names the same fields in ``ProviderRef.source``):

- results (ORU^R01, ORU^R30-R32, OUL, MDM^T02/T04/T10; FHIR DiagnosticReport,
  which the FHIR gateway labels ORU^R01):
  ``ordering-provider`` (OBR-16, ORC-12), ``copies-to`` (OBR-28 repetitions,
  PRT with role RCT), ``patient-gp`` (PD1-4, ROL with role ODRP or PP, PRT
  PP). OBR-49 (table 0507) is honoured: when it is valued without ``CC`` or
  ``BCC``, copies were not requested and copies-to recipients are skipped;
  ``BCC`` makes the render hide OBR-28 from every recipient.
- referrals and orders (REF^I12-I14, OMG^O19, OML, ORM; FHIR ServiceRequest and
  Task, labelled REF^I12: ServiceRequest.performer and Task.owner are PRD RT):
  ``referred-to`` (PRD role RT, ROL/PRT role RT, PRT role PO — v2.5 ORC/OBR
  carry no performer, so an order without these goes to its ``addressee``);
- answers (RRI^I12-I15, OSU, ORL, ORG, ORR, SIU): ``referrer``
  (PRD/ROL/PRT role RP, then the ordering provider ORC-12/OBR-16) — the
  answer goes back to whoever referred.
- CI-SIS document requests (MSH-21 ``CISIS_CDA_HL7_V2``): instead of the
  result rules, ``mssante-rct`` — each PRT ``RCT``, as a directory partner
  or an MSSanté address, within the request's flags (``routing/cisis.py``);
- any message: ``addressee`` — MSH-6 naming a known partner (not the platform);
- explicit ``routes:`` from the directory file (message type with wildcards,
  sender, field conditions; ``to:`` partners or roles).

Never back to the sender unless a route says ``include_sender``; one
recipient per partner however many rules chose it.

Identity (domain-requirements §3.1): a message carrying an INS that is not
valid and qualified (``adapters/hl7v2/ins.py``; HL7 v2 ingress already
refused it when the sender's policy is ``refuse``) is refused here too under
that policy; otherwise it is routed and the render strips the INS (flagged).
Routing never uses the INS: recipients come from providers, not patients.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from adapters.hl7v2 import ins
from adapters.hl7v2.er7 import Message
from broker.directory import Directory, Partner, PartnerRef, Route
from broker.envelope import Envelope, ProviderRef
from broker.errors import MessageError
from routing import cisis

Kind = Literal["result", "referral", "answer", "other"]

RESULT_TYPES = ("ORU^R01", "ORU^R3[0-2]", "OUL^*", "MDM^T02", "MDM^T04", "MDM^T10")
REFERRAL_TYPES = ("REF^I1[2-4]", "OMG^O19", "OML^*", "ORM^O01")
ANSWER_TYPES = ("RRI^I1[2-5]", "OSU^*", "ORL^*", "ORG^*", "ORR^*", "SIU^*")
# FHIR input whose content has no HL7 v2 equivalent keeps its resource type or
# event code in `message_type`: classified by the resource type it starts with.
FHIR_KINDS: dict[str, Kind] = {
    "DiagnosticReport": "result",
    "ServiceRequest": "referral",
    "Task": "answer",
}
COPIES_REQUESTED = frozenset({"CC", "BCC"})
_V2_KINDS: tuple[tuple[tuple[str, ...], Kind], ...] = (
    (RESULT_TYPES, "result"),
    (REFERRAL_TYPES, "referral"),
    (ANSWER_TYPES, "answer"),
)


@dataclass(frozen=True)
class Reason:
    """One rule choosing one recipient: the rule, the field it read, the value that matched.

    For FHIR input ``field`` is the HL7 v2 field of the same meaning and
    ``path`` the FHIRPath the value was read from.
    """

    rule: str
    field: str
    value: str = ""
    path: str = dataclasses.field(default="", compare=False)

    def __str__(self) -> str:
        text = (
            f"{self.rule} via {self.field}={self.value}"
            if self.value
            else (f"{self.rule} via {self.field}")
        )
        return f"{text} ({self.path})" if self.path else text


@dataclass(frozen=True)
class Recipient:
    """A partner the message goes to, with every reason that chose it."""

    partner: str
    reasons: tuple[Reason, ...]

    @property
    def rules(self) -> list[str]:
        """Return the rule names that chose this recipient, in the order they did."""
        return list(dict.fromkeys(r.rule for r in self.reasons))


@dataclass(frozen=True)
class Skipped:
    """Something a rule found but could not deliver to, and why (for operators)."""

    rule: str
    field: str
    value: str
    why: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.field}={self.value} {self.why}"


@dataclass(frozen=True)
class Decision:
    """What routing decided for one message."""

    kind: Kind
    recipients: list[Recipient] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    refused: str | None = None
    strip_ins: bool = False
    # A refusal's ERRs: (HL7 table 0357 code, field), e.g. (102, "PID-3").
    refused_errors: tuple[tuple[int, str], ...] = ()

    @property
    def is_routable(self) -> bool:
        """Tell whether at least one recipient was resolved and the message was not refused."""
        return self.refused is None and bool(self.recipients)

    def reason(self, limit: int = 5) -> str:
        """Return why nobody receives the message (ids and codes only), for operators."""
        if self.refused:
            return self.refused
        if self.recipients:
            return ""
        if not self.skipped:
            return f"no rule applies to this {self.kind} message and no route matches"
        shown = "; ".join(str(s) for s in self.skipped[:limit])
        more = f"; and {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
        return f"no recipient resolved: {shown}{more}"


def kind_of(envelope: Envelope) -> Kind:
    """Classify a message as a result, a referral/order, an answer, or other.

    FHIR input carries the HL7 v2 equivalent of its content in
    ``message_type`` (``adapters/fhir/extract.py``: a DiagnosticReport is
    ``ORU^R01``, a ServiceRequest or Task ``REF^I12``), so both formats are
    classified alike; a FHIR type or event the gateway could not map falls back
    to the resource type it starts with.
    """
    for patterns, kind in _V2_KINDS:
        if any(fnmatch.fnmatchcase(envelope.message_type, p) for p in patterns):
            return kind
    if envelope.format == "fhir":
        for prefix, kind in FHIR_KINDS.items():
            if envelope.message_type.startswith(prefix):
                return kind
    return "other"


# --- who plays each role in a message ---------------------------------------------

Finder = Callable[[Envelope], list[tuple[ProviderRef, str]]]


def _refs(
    envelope: Envelope, sources: Iterable[str], roles: dict[str, Iterable[str]] | None = None
) -> list[tuple[ProviderRef, str]]:
    """Return the provider references from given fields, or from given (segment, role) pairs."""
    wanted = set(sources)
    by_role = {seg: set(codes) for seg, codes in (roles or {}).items()}
    found: list[tuple[ProviderRef, str]] = []
    for ref in envelope.providers:
        if ref.source in wanted:
            found.append((ref, ref.source))
        elif ref.source in by_role and ref.role.upper() in by_role[ref.source]:
            found.append((ref, f"{ref.source}({ref.role.upper()})"))
    return found


def ordering_providers(envelope: Envelope) -> list[tuple[ProviderRef, str]]:
    """Return OBR-16 and ORC-12, the ordering provider."""
    return _refs(envelope, ("OBR-16", "ORC-12"))


def copies_to(envelope: Envelope) -> list[tuple[ProviderRef, str]]:
    """Return OBR-28 repetitions and PRT with role RCT (result copies to)."""
    return _refs(envelope, ("OBR-28",), {"PRT": ("RCT",)})


def patient_gp(envelope: Envelope) -> list[tuple[ProviderRef, str]]:
    """Return PD1-4, ROL ODRP/PP and PRT PP: the patient's declared GP."""
    return _refs(envelope, ("PD1-4",), {"ROL": ("ODRP", "PP"), "PRT": ("PP",)})


def referred_to(envelope: Envelope) -> list[tuple[ProviderRef, str]]:
    """Return PRD/ROL/PRT role RT and PRT role PO: who a referral or order is for."""
    return _refs(envelope, (), {"PRD": ("RT",), "ROL": ("RT",), "PRT": ("RT", "PO")})


def referrer(envelope: Envelope) -> list[tuple[ProviderRef, str]]:
    """Return PRD/ROL/PRT role RP, else the ordering provider: who an answer goes back to."""
    found = _refs(envelope, (), {"PRD": ("RP",), "ROL": ("RP",), "PRT": ("RP", "OP")})
    return found or ordering_providers(envelope)


def addressee(envelope: Envelope) -> list[tuple[ProviderRef, str]]:
    """Return MSH-6, the receiving facility (routable when it names a partner)."""
    return _refs(envelope, ("MSH-6",))


ROLE_FINDERS: dict[str, Finder] = {
    "ordering-provider": ordering_providers,
    "copies-to": copies_to,
    "patient-gp": patient_gp,
    "referred-to": referred_to,
    "referrer": referrer,
    "addressee": addressee,
}
BUILT_IN: dict[Kind, tuple[str, ...]] = {
    "result": ("ordering-provider", "copies-to", "patient-gp", "addressee"),
    "referral": ("referred-to", "addressee"),
    "answer": ("referrer", "addressee"),
    "other": ("addressee",),
}


# --- the decision --------------------------------------------------------------------


class _Collector:
    """Gather reasons per partner, keeping the order partners were first chosen."""

    def __init__(self, envelope: Envelope, directory: Directory) -> None:
        self.envelope = envelope
        self.directory = directory
        self.reasons: dict[str, list[Reason]] = {}
        self.skipped: list[Skipped] = []

    def add(self, partner: Partner, reason: Reason, *, include_sender: bool = False) -> None:
        if partner.id == self.envelope.sender and not include_sender:
            self.skipped.append(Skipped(reason.rule, reason.field, reason.value, "is the sender"))
            return
        if partner.endpoint is None:
            self.skipped.append(
                Skipped(reason.rule, reason.field, reason.value, f"({partner.id}) has no endpoint")
            )
            return
        reasons = self.reasons.setdefault(partner.id, [])
        if reason not in reasons:
            reasons.append(reason)

    def add_role(self, role: str, rule: str, *, include_sender: bool = False) -> None:
        for ref, where in ROLE_FINDERS[role](self.envelope):
            partner = self.directory.resolve(ref)
            reason = Reason(rule, where, ref.id, ref.path)
            if partner is None:
                if role != "addressee":  # MSH-6 usually names the platform itself
                    self.skipped.append(Skipped(rule, where, ref.id, "is not in the directory"))
                continue
            self.add(partner, reason, include_sender=include_sender)


def route(envelope: Envelope, directory: Directory) -> Decision:
    """Decide the recipients of one message; pure, deterministic."""
    kind = kind_of(envelope)
    sender = directory.partner(envelope.sender)
    identity = envelope.identity
    unqualified_ins = identity.ins_present and not identity.ins_qualified
    if unqualified_ins and sender is not None and sender.identity_policy == "refuse":
        issues = identity.issues or ["not_qualified"]
        return Decision(
            kind,
            refused=f"INS not valid and qualified ({', '.join(issues)}) and the sender's "
            "identity policy is refuse",
            refused_errors=tuple(dict.fromkeys(ins.RULES[i] for i in issues if i in ins.RULES)),
        )
    collected = _Collector(envelope, directory)
    try:
        request = cisis.request_of(envelope)
    except MessageError as exc:
        return Decision(kind, refused=f"invalid CI-SIS document request: {exc}")
    if request is not None:
        # The creator chose the recipients, PRT by PRT: they replace the result rules.
        chosen, left = cisis.choose(request, directory)
        for choice in chosen:
            collected.add(choice.partner, Reason(cisis.RULE, choice.field, choice.value))
        collected.skipped += [Skipped(cisis.RULE, x.field, x.value, x.why) for x in left]
    copies_wanted = not envelope.handling or bool(COPIES_REQUESTED & set(envelope.handling))
    for role in BUILT_IN[kind] if request is None else ():
        if role == "copies-to" and not copies_wanted:
            for ref, where in copies_to(envelope):
                collected.skipped.append(
                    Skipped(role, where, ref.id, "skipped: OBR-49 does not request copies")
                )
            continue
        collected.add_role(role, role)
    message: Message | None = None
    for rule in directory.routes:
        if not rule.enabled or not _route_matches(rule, envelope):
            continue
        if rule.when.fields:
            if message is None:
                message = _parse(envelope)
            if message is None or not _fields_match(rule, message):
                continue
        label = f"route:{rule.name}"
        for target in rule.to:
            if isinstance(target, PartnerRef):
                partner = directory.partner(target.partner)
                if partner is not None:
                    collected.add(
                        partner,
                        Reason(label, "routes", target.partner),
                        include_sender=rule.include_sender,
                    )
            else:
                collected.add_role(target, label, include_sender=rule.include_sender)
    recipients = [Recipient(pid, tuple(reasons)) for pid, reasons in collected.reasons.items()]
    return Decision(
        kind,
        recipients=recipients,
        skipped=collected.skipped,
        strip_ins=unqualified_ins,
    )


def _route_matches(rule: Route, envelope: Envelope) -> bool:
    if rule.when.sender is not None and rule.when.sender != envelope.sender:
        return False
    return rule.when.matches_type(envelope.message_type)


def _parse(envelope: Envelope) -> Message | None:
    """Read the payload for field conditions; FHIR input has no HL7 v2 fields."""
    if envelope.format != "hl7v2":
        return None
    try:
        return Message(envelope.payload.decode(envelope.charset, errors="replace"))
    except MessageError:
        return None


def _fields_match(rule: Route, message: Message) -> bool:
    for path, pattern in rule.when.fields.items():
        try:
            value = message.get(path)
        except ValueError:
            return False
        if not fnmatch.fnmatchcase(value, pattern):
            return False
    return True
