"""``carebroker route explain FILE``: who would receive a message, and why, sending nothing.

For hospital IT testing an interface before go-live: the same rules as the
router, on a message file, against a partner file. Prints each recipient
with the rules and the message fields that chose it, then what was found
but not delivered to (unknown practitioner, the sender itself, a partner
without an endpoint). Exit status 0 when someone receives the message, 1
when it would be unroutable.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any

from adapters.hl7v2 import charset
from adapters.hl7v2.er7 import Message
from adapters.hl7v2.extract import build_envelope
from broker.commands.options import settings_from
from broker.errors import ConfigError, MessageError
from broker.ids import new_id_at
from broker.pseudonym import Pseudonymizer
from routing import rules
from routing.directory import Directory, FhirEndpoint, MllpEndpoint, Partner, load_directory


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
    explain.add_argument("file", type=Path, help="an HL7 v2 message (ER7)")
    explain.add_argument(
        "--config", type=Path, metavar="FILE", help="partner file (default CAREBROKER_CONFIG)"
    )
    explain.add_argument(
        "--sender", metavar="ID", help="sender partner id (default: the partner MSH-4 names)"
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
    if data.lstrip()[:1] in (b"{", b"<"):
        raise MessageError(
            f"{args.file}: FHIR input is not yet supported by route explain "
            "(it lands with FHIR translation); give an HL7 v2 message"
        )
    text, codec = charset.decode(data)
    message = Message(text)
    sender = _sender(args.sender, message, directory)
    if sender.inbound_charset:
        text, codec = charset.decode(data, sender.inbound_charset)
        message = Message(text)
    message_id, at = new_id_at()
    envelope = build_envelope(
        message,
        payload=data,
        codec=codec,
        sender=sender.id,
        channel="file",
        message_id=message_id,
        received_at=at,
        pseudonymizer=Pseudonymizer(secrets.token_bytes(32)),  # digests are not shown
    )
    decision = rules.route(envelope, directory)
    out = sys.stdout
    out.write(
        f"{args.file}: {envelope.message_type} {envelope.control_id} from {sender.id} "
        f"({decision.kind})\n"
    )
    if decision.refused:
        out.write(f"refused: {decision.refused}\n")
        return 1
    if decision.recipients:
        out.write("recipients:\n")
        for recipient in decision.recipients:
            partner = directory.partners[recipient.partner]
            out.write(f"  {partner.id}  ({_describe(partner)})\n")
            for reason in recipient.reasons:
                out.write(f"    {reason}\n")
    else:
        out.write(f"unroutable: {decision.reason()}\n")
    if decision.skipped:
        out.write("not delivered to:\n")
        for skipped in decision.skipped:
            out.write(f"  {skipped}\n")
    if decision.strip_ins:
        out.write("identity: INS without a qualified identity: forwarded without the INS\n")
    return 0 if decision.recipients else 1


def _sender(given: str | None, message: Message, directory: Directory) -> Partner:
    if given is not None:
        partner = directory.partner(given)
        if partner is None:
            raise ConfigError(f"--sender {given}: no such partner in {directory.source}")
        return partner
    partner = directory.by_facility(message.sending_facility)
    if partner is None:
        raise ConfigError(
            f"MSH-4 {message.sending_facility!r} names no partner in {directory.source}: "
            "give --sender ID"
        )
    return partner


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
    else:
        where = "mailbox"
    return f"{where}; reads {reads}"
