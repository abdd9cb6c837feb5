"""``carebroker route explain FILE``: who would receive a message, and why, sending nothing.

For hospital IT testing an interface before go-live: the same rules and the
same rendering as the router, on a message file (HL7 v2 ER7, or FHIR JSON: a
message Bundle, a transaction Bundle or a resource), against a partner file.
Prints each recipient with the rules and the message fields (or FHIRPaths)
that chose it and what it would receive (format, version, translation and
how many parts of the message it leaves unmapped), then what was found but
not delivered to (unknown practitioner, the sender itself, a partner without
an endpoint). Exit status 0 when someone receives the message, 1 when it
would be unroutable.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any

from adapters.fhir import auth
from adapters.fhir import extract as fhir_extract
from adapters.fhir.validate import parse_json, validate
from adapters.hl7v2 import charset, ins
from adapters.hl7v2.er7 import Message
from adapters.hl7v2.extract import build_envelope
from broker.commands.options import settings_from
from broker.directory import (
    Directory,
    FhirEndpoint,
    MllpEndpoint,
    MssanteEndpoint,
    Partner,
    load_directory,
)
from broker.envelope import Envelope
from broker.errors import ConfigError
from broker.ids import new_id_at
from broker.pseudonym import Pseudonymizer
from routing import rules
from routing.render import RenderError
from routing.router import render_copy


def register(commands: Any) -> None:
    """Add ``route explain``."""
    parser = commands.add_parser("route", help="routing tools")
    sub = parser.add_subparsers(dest="route_command", metavar="ACTION", required=True)
    explain = sub.add_parser(
        "explain",
        help="print who would receive a message and why (sends nothing)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument("file", type=Path, help="an HL7 v2 message (ER7) or FHIR JSON")
    explain.add_argument(
        "--config", type=Path, metavar="FILE", help="partner file (default CAREBROKER_CONFIG)"
    )
    explain.add_argument(
        "--sender",
        metavar="ID",
        help="sender partner id (default: the partner MSH-4, or the FHIR MessageHeader, names)",
    )
    explain.set_defaults(handler=_explain)


def _explain(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if settings.config is None:
        raise ConfigError("give the partner file with --config FILE (or CAREBROKER_CONFIG)")
    directory = load_directory(settings.config)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{args.file}: cannot be read ({exc.strerror or 'error'})") from exc
    # Digests are not shown: a throwaway key keeps them out of reach.
    pseudonymizer = Pseudonymizer(secrets.token_bytes(32))
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        envelope = _fhir_envelope(data, args.sender, directory, pseudonymizer)
    else:
        envelope = _v2_envelope(
            data, args.sender, directory, pseudonymizer, production=settings.ins.production
        )
    decision = rules.route(envelope, directory)
    out = sys.stdout
    out.write(
        f"{args.file}: {envelope.message_type} {envelope.control_id} from {envelope.sender} "
        f"({decision.kind}, {envelope.format})\n"
    )
    if decision.refused:
        out.write(f"refused: {decision.refused}\n")
        return 1
    if decision.recipients:
        out.write("recipients:\n")
        for recipient in decision.recipients:
            partner = directory.partner(recipient.partner)
            assert partner is not None  # routing chose it from this directory
            out.write(f"  {partner.id}  ({_describe(partner)})\n")
            for reason in recipient.reasons:
                out.write(f"    {reason}\n")
            out.write(f"    receives: {_receives(envelope, partner, decision, directory)}\n")
    else:
        out.write(f"unroutable: {decision.reason()}\n")
    if decision.skipped:
        out.write("not delivered to:\n")
        for skipped in decision.skipped:
            out.write(f"  {skipped}\n")
    if decision.strip_ins:
        issues = ", ".join(envelope.identity.issues) or "not_qualified"
        out.write(f"identity: INS not valid and qualified ({issues}): forwarded without it\n")
    return 0 if decision.recipients else 1


def _v2_envelope(
    data: bytes,
    given: str | None,
    directory: Directory,
    pseudonymizer: Pseudonymizer,
    *,
    production: bool,
) -> Envelope:
    """Read an HL7 v2 file as the MLLP ingress does (charset, sender by MSH-4, its INS policy)."""
    text, codec = charset.decode(data)
    message = Message(text)
    sender = _given(given, directory)
    if sender is None:
        sender = directory.by_facility(message.sending_facility)
    if sender is None:
        raise ConfigError(
            f"MSH-4 {message.sending_facility!r} names no partner in {directory.source}: "
            "give --sender ID"
        )
    if sender.inbound_charset:
        text, codec = charset.decode(data, sender.inbound_charset)
        message = Message(text)
    message_id, at = new_id_at()
    return build_envelope(
        message,
        payload=data,
        codec=codec,
        sender=sender.id,
        channel="file",
        message_id=message_id,
        received_at=at,
        pseudonymizer=pseudonymizer,
        ins_check=ins.check(
            message, ins.Policy.of(sender.qualified_statuses, production=production)
        ),
    )


def _fhir_envelope(
    data: bytes, given: str | None, directory: Directory, pseudonymizer: Pseudonymizer
) -> Envelope:
    """Read FHIR JSON as the FHIR gateway does (validated; sender from the MessageHeader)."""
    document = parse_json(data)
    validate(document)
    sender = _given(given, directory)
    if sender is None:
        sender = auth.claimed_sender(document, directory)
        if sender is None:
            raise ConfigError(
                f"the content names no partner of {directory.source} as its sender "
                "(identifiers of MessageHeader.sender, MessageHeader.source.endpoint): "
                "give --sender ID"
            )
    message_id, at = new_id_at()
    # Bundle.identifier (a resource's identifier is a list), else its id, as the gateway keys it.
    identifier = document.get("identifier")
    value = identifier.get("value") if isinstance(identifier, dict) else None
    control_id = str(value or document.get("id") or message_id)
    return fhir_extract.build_envelope(
        document,
        payload=data,
        sender=sender.id,
        control_id=control_id,
        message_id=message_id,
        received_at=at,
        pseudonymizer=pseudonymizer,
    )


def _given(given: str | None, directory: Directory) -> Partner | None:
    if given is None:
        return None
    partner = directory.partner(given)
    if partner is None:
        raise ConfigError(f"--sender {given}: no such partner in {directory.source}")
    return partner


def _receives(
    envelope: Envelope, partner: Partner, decision: rules.Decision, directory: Directory
) -> str:
    """Say what the router would store for this recipient, rendered as it would be."""
    try:
        rendered = render_copy(envelope, partner, decision, directory)
    except RenderError as exc:
        return f"nothing: {exc} (the delivery would fail)"
    if rendered.content_type.startswith("message/rfc822"):
        what = f"an MSSanté mail of {len(rendered.payload):,} bytes (documents, PDF, IHE_XDM.zip)"
    elif rendered.content_type.startswith("application/fhir"):
        what = "FHIR message Bundle"
    else:
        what = f"HL7 v2 ({rendered.content_type.partition('charset=')[2] or 'utf-8'})"
    translation = rendered.translation
    if translation is not None:
        what += f", translated from {'HL7 v2' if translation.source == 'hl7v2' else 'FHIR'}"
        if translation.unmapped:
            what += f", {len(translation.unmapped)} part(s) not mapped"
    flags = [f for f in rendered.flags if f != "translated"]
    return what + (f" [{', '.join(flags)}]" if flags else "")


def _describe(partner: Partner) -> str:
    endpoint = partner.endpoint
    accepts = partner.accepts
    reads = (
        f"{accepts.format} {accepts.version or ''} {accepts.charset or ''}".strip()
        if accepts
        else "?"
    )
    if isinstance(endpoint, MllpEndpoint):
        where = f"mllp {endpoint.host}:{endpoint.port}"
    elif isinstance(endpoint, FhirEndpoint):
        where = f"fhir {endpoint.url}"
    elif isinstance(endpoint, MssanteEndpoint):
        return f"mssante {endpoint.address or '(the patient address of the message)'}"
    else:
        where = "mailbox"
    return f"{where}; reads {reads}"
