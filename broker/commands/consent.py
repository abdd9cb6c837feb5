"""``carebroker consent add|remove|list``: patients who object to sharing (deliveries blocked)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from broker.commands.connect import operator, pseudonymizer, stores
from broker.commands.options import add_store_options, settings_from
from routing import consent


def register(commands: Any) -> None:
    """Add ``consent add``, ``consent remove`` and ``consent list``."""
    parser = commands.add_parser(
        "consent",
        help="patient oppositions to sharing",
        description="Deliveries about a patient with an opposition on file are blocked and "
        "audited, never sent. A patient is named by one identifier as PID-3 carries it: the "
        "assigning authority (PID-3.4: its OID, or its namespace when the messages give no "
        "OID) and the value. Only a pseudonymous digest of the value is stored.",
    )
    sub = parser.add_subparsers(dest="consent_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="file an opposition; block the patient's pending deliveries")
    _identifier_options(add)
    add.add_argument("--type", dest="id_type", default="", help="identifier type (PID-3.5)")
    add.add_argument("--note", default="", help="your reference (no patient data)")
    add.set_defaults(handler=_add)
    remove = sub.add_parser("remove", help="withdraw an opposition (blocked stays blocked)")
    _identifier_options(remove)
    remove.set_defaults(handler=_remove)
    listing = sub.add_parser("list", help="list oppositions on file (digests, not identifiers)")
    add_store_options(listing)
    listing.set_defaults(handler=_list)


def _identifier_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--authority", required=True, help="assigning authority (OID or namespace)")
    parser.add_argument("--id", dest="value", required=True, help="the identifier value")
    add_store_options(parser)


def _add(args: argparse.Namespace) -> int:
    settings = settings_from(args)

    async def run() -> tuple[str, int]:
        async with stores(settings) as found:
            return await consent.add(
                found.consent,
                await pseudonymizer(settings, found),
                authority=args.authority,
                value=args.value,
                id_type=args.id_type,
                note=args.note,
                actor=operator(),
            )

    digest, blocked = asyncio.run(run())
    sys.stdout.write(
        f"opposition on file for patient {digest}; {blocked} pending delivery(ies) blocked\n"
    )
    return 0


def _remove(args: argparse.Namespace) -> int:
    settings = settings_from(args)

    async def run() -> bool:
        async with stores(settings) as found:
            return await consent.remove(
                found.consent,
                await pseudonymizer(settings, found),
                authority=args.authority,
                value=args.value,
                actor=operator(),
            )

    if not asyncio.run(run()):
        sys.stderr.write("carebroker: no opposition on file for this identifier\n")
        return 1
    sys.stdout.write("opposition withdrawn; blocked deliveries stay blocked (see `replay`)\n")
    return 0


def _list(args: argparse.Namespace) -> int:
    settings = settings_from(args)

    async def run() -> list[consent.Opposition]:
        async with stores(settings) as found:
            return await consent.list_oppositions(found.consent)

    for item in asyncio.run(run()):
        sys.stdout.write(
            f"{item.digest}  {item.authority}  {item.id_type or '-'}  "
            f"{item.created_at:%Y-%m-%d %H:%M}  {item.created_by}  {item.note}\n"
        )
    return 0
