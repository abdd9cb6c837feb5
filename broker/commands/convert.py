"""``carebroker convert``: translate one file between HL7 v2 and FHIR R4, offline.

``carebroker convert --to fhir FILE.hl7`` prints the FHIR message Bundle
(JSON) on stdout; ``carebroker convert --to hl7v2 [--version 2.5] FILE.json``
prints the HL7 v2 message (ER7, CR between segments) in the chosen charset.
What could not be mapped is listed on stderr as warnings, by location only.
A file that cannot be read or translated is one line on stderr naming the
file and the segment/field or FHIRPath, and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from adapters.fhir.validate import FhirValidationError, parse_json, validate
from adapters.hl7v2 import charset as charsets
from adapters.hl7v2.er7 import Message
from adapters.translate import fhir_to_v2, v2_to_fhir
from adapters.translate.bundle import dumps
from broker.errors import MessageError


def register(commands: Any) -> None:
    """Add ``convert``."""
    convert = commands.add_parser(
        "convert",
        help="translate an HL7 v2 file to FHIR R4, or a FHIR file to HL7 v2",
        description="Translate one message file and print the result on stdout: "
        "HL7 v2 -> FHIR R4 message Bundle (v2-to-FHIR IG), or FHIR R4 results and "
        "referrals -> HL7 v2 (ORU^R01, REF^I12, OML^O21).",
    )
    convert.add_argument("file", type=Path, metavar="FILE", help="the message to translate")
    convert.add_argument("--to", choices=("fhir", "hl7v2"), required=True, help="target format")
    convert.add_argument(
        "--version", default="2.5", help="HL7 v2 version to write (MSH-12), default 2.5"
    )
    convert.add_argument(
        "--charset",
        default="UNICODE UTF-8",
        help="HL7 v2 character set to write (MSH-18, table 0211), default 'UNICODE UTF-8'",
    )
    convert.add_argument(
        "--type",
        dest="message_type",
        metavar="TYPE",
        help="HL7 v2 message to write: ORU^R01, REF^I12 or OML^O21 (default: by content)",
    )
    convert.add_argument(
        "--timezone",
        metavar="ZONE",
        help="sender's zone for HL7 v2 times without an offset (Europe/Paris or +01:00); "
        "default: the offset of MSH-7",
    )
    convert.set_defaults(handler=_convert)


def _convert(args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        return _fail(f"{args.file}: cannot read ({exc.strerror or type(exc).__name__})")
    try:
        if args.to == "fhir":
            text, _ = charsets.decode(data.removeprefix(b"\xef\xbb\xbf"))
            conversion = v2_to_fhir.convert(Message(text), timezone=args.timezone)
            sys.stdout.write(dumps(conversion.bundle, indent=2) + "\n")
            warnings = conversion.warnings
        else:
            document = parse_json(data)
            validate(document)
            message = fhir_to_v2.convert(
                document,
                version=args.version,
                charset=args.charset,
                message_type=args.message_type,
            )
            sys.stdout.flush()
            sys.stdout.buffer.write(message.data)
            sys.stdout.buffer.flush()
            warnings = message.warnings
    except FhirValidationError as exc:
        where = "; ".join(f"{i.expression}: {i.diagnostics}" for i in exc.issues[:5])
        return _fail(f"{args.file}: invalid FHIR: {where}")
    except MessageError as exc:
        at = f" (at {exc.location})" if exc.location else ""
        return _fail(f"{args.file}: {exc}{at}")
    for warning in warnings:
        sys.stderr.write(f"carebroker: warning: {args.file}: {warning}\n")
    return 0


def _fail(text: str) -> int:
    sys.stderr.write(f"carebroker: error: {text}\n")
    return 1
