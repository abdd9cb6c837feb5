"""What a message must satisfy to be accepted: its header (MSH-9..16), its sender, its INS.

Pure functions, no I/O: each returns a :class:`Refusal` (what to answer, and
the reason kept with the refused input) or lets the message through. HL7
v2.5.1 §2.9 and domain-requirements §1.2-1.3 decide between AE (the sender
must correct the message) and AR (unsupported type, version or processing id,
or a sender carebroker does not accept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.hl7v2 import cisis, ins
from adapters.hl7v2.ack import TABLE_0155, AckError, Header, Outcome, version_of
from adapters.hl7v2.er7 import Message
from broker.directory import Directory, Partner

PROCESSING_IDS = frozenset({"P", "T", "D"})  # table 0103

# How ingress checks where a message comes from against the partner MSH-4 names:
# "off" (input that did not come over the network: files, benches), "declared"
# (a partner that declares `certificate_cn` or `networks` must connect that way;
# one that declares neither is taken on its word), "required" (as "declared",
# and a partner that declares neither is refused: a listener beyond loopback).
SenderCheck = Literal["off", "declared", "required"]


@dataclass(frozen=True)
class Refusal:
    """Why a message is refused: the ERR to answer, AE or AR, the reason kind, who sent it.

    ``more``: further ERRs of the same refusal (every INS rule a message breaks).
    """

    error: AckError
    outcome: Outcome
    kind: str
    sender: str | None = None
    more: tuple[AckError, ...] = ()

    @property
    def errors(self) -> list[AckError]:
        """Return every ERR of the refusal, the main one first."""
        return [self.error, *self.more]


def check_header(message: Message, header: Header) -> Refusal | None:
    """Check MSH-9, MSH-10, MSH-11, MSH-12 and MSH-15/16 (HL7 v2.5.1 §2.14.9)."""
    msh = message.msh
    if not msh.get(9, comp=1):
        return Refusal(AckError(101, "MSH-9 message type missing", "MSH-9"), "error", "malformed")
    if msh.get(9, comp=1).upper() == "ACK":
        # Acknowledgements are never acknowledged, or two engines answer each other forever.
        return Refusal(
            AckError(200, "acknowledgement sent to ingress", "MSH-9"), "reject", "acknowledgement"
        )
    if not msh.get(9, comp=2):
        return Refusal(
            AckError(101, "MSH-9 trigger event missing", "MSH-9.2"), "error", "malformed"
        )
    for n, value in ((15, header.accept_ack_type), (16, header.application_ack_type)):
        if value and value.upper() not in TABLE_0155:
            error = AckError(103, f"MSH-{n} not a table 0155 value", f"MSH-{n}")
            return Refusal(error, "error", "malformed")
    if not message.control_id:
        return Refusal(
            AckError(101, "MSH-10 message control id missing", "MSH-10"), "error", "malformed"
        )
    processing = message.processing_id
    if not processing:
        return Refusal(
            AckError(101, "MSH-11 processing id missing", "MSH-11"), "error", "malformed"
        )
    if processing.upper() not in PROCESSING_IDS:
        error = AckError(202, "MSH-11 processing id not P, T or D", "MSH-11")
        return Refusal(error, "reject", "unsupported")
    if not message.version:
        return Refusal(AckError(101, "MSH-12 version id missing", "MSH-12"), "error", "malformed")
    version = version_of(header.version, header.enc)
    if version is None or version[0] != 2:
        error = AckError(203, "MSH-12 version not HL7 v2.x", "MSH-12")
        return Refusal(error, "reject", "unsupported")
    return None


def check_identity(message: Message, partner: Partner, *, production: bool) -> Refusal | ins.Check:
    """Check the INS against the sender's policy: a Refusal (AE) under ``refuse``, else the check.

    Under ``strip`` a message breaking the rules is accepted; routing then
    forwards it without the INS, flagged (adapters/hl7v2/ins.py, §3.1).
    """
    policy = ins.Policy.of(partner.qualified_statuses, production=production)
    result = ins.check(message, policy)
    if not result.problems or partner.identity_policy != "refuse":
        return result
    first, *rest = (AckError(p.code, p.text, p.location) for p in result.problems)
    return Refusal(first, "error", "identity", partner.id, tuple(rest))


def identify(
    directory: Directory,
    message: Message,
    certificate_cn: str | None,
    *,
    peer_host: str = "",
    senders: SenderCheck = "off",
) -> Partner | Refusal:
    """Return the sending partner (MSH-4, MSH-3, client certificate), or why it is refused.

    With mutual TLS the certificate names the partner and MSH-4 must name the
    same one: a message sent over one partner's certificate claiming to come
    from another is spoofing, refused and kept with the certificate's partner.
    Without a certificate, a partner that declares ``networks`` must send from
    one of them (``peer_host``); see :func:`check_origin`.
    """
    partner = directory.by_facility(message.sending_facility)
    if certificate_cn is not None:
        owner = directory.by_certificate(certificate_cn)
        if owner is None:
            error = AckError(103, "client certificate names no partner", "MSH-4")
            return Refusal(error, "reject", "unknown_certificate", partner.id if partner else None)
        if partner is None or partner.id != owner.id:
            error = AckError(
                103, f"MSH-4 does not name {owner.id}, the certificate's partner", "MSH-4"
            )
            return Refusal(error, "reject", "spoofed_sender", owner.id)
    if partner is None:
        error = AckError(103, "MSH-4 sending facility is not a known partner", "MSH-4")
        return Refusal(error, "reject", "unknown_sender")
    if senders != "off" and certificate_cn is None:
        refused = check_origin(directory, partner, peer_host, required=senders == "required")
        if refused is not None:
            return refused
    if partner.applications:
        wanted = {a.casefold() for a in partner.applications}
        if message.sending_application.casefold() not in wanted:
            error = AckError(103, f"MSH-3 is not an application of {partner.id}", "MSH-3")
            return Refusal(error, "reject", "unknown_application", partner.id)
    return partner


def check_origin(
    directory: Directory, partner: Partner, peer_host: str, *, required: bool
) -> Refusal | None:
    """Check that a message MSH-4 says is ``partner``'s, sent without a certificate, may be.

    A partner that declares ``networks`` sends from one of them; one that
    declares only ``certificate_cn`` sends over mutual TLS. Anything else is
    someone else using its name: refused AR, kept without a sender (who sent it
    is not known), the claimed partner in the reason. A partner that declares
    neither is taken on its word unless ``required`` (a listener reachable
    from beyond this machine, without ``allow_unverified_senders``).
    """
    if partner.networks and directory.sends_from(partner, peer_host):
        return None
    source = peer_host or "this input"
    if partner.networks:
        text = f"MSH-4 names {partner.id}, which does not send from {source}"
    elif partner.certificate_cn:
        text = f"MSH-4 names {partner.id}, which sends only with its client certificate"
    elif required:
        text = (
            f"MSH-4 names {partner.id}, which declares no certificate_cn or networks: "
            "its messages cannot be verified on this listener"
        )
        return Refusal(AckError(103, text, "MSH-4"), "reject", "unverified_sender")
    else:
        return None
    return Refusal(AckError(103, text, "MSH-4"), "reject", "spoofed_sender")


def unverified_senders(directory: Directory) -> list[str]:
    """Return the ids of partners MSH-4 can name that declare no way to verify their messages."""
    return sorted(
        p.id
        for p in directory.partners.values()
        if (p.facilities or p.identifiers) and not p.declares_connection
    )


def check_profile(message: Message, partner: Partner) -> Partner | Refusal:
    """Check a message against the profile its MSH-21 claims: the CI-SIS CDA-in-HL7v2 one.

    A message naming ``CISIS_CDA_HL7_V2`` must be a valid document request
    (``adapters/hl7v2/cisis.py``): refused AE/AR with the guide's ERR
    otherwise, and kept (kind ``invalid_document_request``).
    """
    refused = cisis.refusal_of(message)
    if refused is None:
        return partner
    error, outcome = refused
    return Refusal(error, outcome, "invalid_document_request", partner.id)
