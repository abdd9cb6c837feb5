"""Record-keeping commands: ``audit verify``, ``audit export`` and ``retention apply``.

``audit verify`` proves the trail intact, ``audit export`` hands it over in
standard forms, ``retention apply`` drops what is past its retention: the
three things an operator does with what carebroker keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO, TypeVar

from broker import retention
from broker.audit_export import to_atna, to_fhir
from broker.commands.options import settings_from
from broker.errors import ConfigError, SchemaMissingError
from broker.local import embedded_dsn
from broker.settings import Settings
from broker.store import audit, db
from broker.store.stores import Stores

T = TypeVar("T")


def register(commands: Any) -> None:
    """Add ``audit verify``, ``audit export``, ``audit bench`` and ``retention apply``."""
    group = commands.add_parser("audit", help="verify and export the audit trail")
    sub = group.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = sub.add_parser(
        "verify",
        help="walk the hash chain; exit 0 when intact, 1 naming the first broken event",
    )
    verify.add_argument("--since", type=_instant, metavar="T", help="first day to check (ISO)")
    _add_database_options(verify)
    verify.set_defaults(handler=_verify)

    export = sub.add_parser(
        "export", help="write audit events as FHIR AuditEvent (NDJSON) or ATNA XML (one a line)"
    )
    export.add_argument("--format", choices=("fhir", "atna"), required=True)
    export.add_argument("--since", type=_instant, metavar="T", help="events chained from T (ISO)")
    export.add_argument("--output", type=Path, metavar="FILE", help="write here, not stdout")
    _add_database_options(export)
    export.set_defaults(handler=_export)

    bench = sub.add_parser(
        "bench",
        help="measure recording, chaining and verifying in a scratch database (dropped after)",
    )
    bench.add_argument("--events", type=int, default=20_000, metavar="N")
    _add_database_options(bench)
    bench.set_defaults(handler=_bench)

    group = commands.add_parser("retention", help="data retention by whole partitions")
    sub = group.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    apply = sub.add_parser(
        "apply",
        help="drop payload, message and audit partitions past their retention",
        description="Drop whole daily partitions older than CAREBROKER_RETENTION_PAYLOAD_DAYS, "
        "_MESSAGE_DAYS and _AUDIT_DAYS. Needs the table owner's rights.",
    )
    apply.add_argument("--dry-run", action="store_true", help="list, drop nothing")
    _add_database_options(apply)
    apply.set_defaults(handler=_retention)


def _add_database_options(parser: argparse.ArgumentParser) -> None:
    """Add where the store is: a DSN, or the data dir of a running `carebroker up`."""
    parser.add_argument(
        "--database-url", metavar="DSN", help="PostgreSQL DSN (CAREBROKER_DATABASE_URL)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="the --data-dir of a running `carebroker up` (its embedded PostgreSQL)",
    )


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def store_dsn(settings: Settings) -> str:
    """Return the configured DSN, else that of the embedded PostgreSQL ``up`` is running."""
    dsn = settings.database_dsn()
    if dsn:
        return dsn
    embedded = embedded_dsn(settings.data_dir)
    if embedded is None:
        raise ConfigError(
            "no database: set CAREBROKER_DATABASE_URL (or --database-url), or run this "
            f"while `carebroker up` runs with --data-dir {settings.data_dir}"
        )
    return embedded


def with_stores(args: argparse.Namespace, work: Callable[[Stores], Awaitable[T]]) -> T:
    """Run ``work`` with the stores the arguments name (two connections)."""
    settings = settings_from(args)
    dsn = store_dsn(settings)

    async def run() -> T:
        async with Stores.open(dsn, settings, size=2) as stores:
            try:
                return await work(stores)
            except SchemaMissingError as exc:
                raise ConfigError(
                    f"PostgreSQL at {db.describe_dsn(dsn)} has no carebroker schema "
                    "(wrong database, or run `carebroker migrate`)"
                ) from exc

    return asyncio.run(run())


def _verify(args: argparse.Namespace) -> int:
    since = args.since.astimezone(UTC).date() if args.since else None
    # Days retention still keeps must all be there: a missing one is not retention.
    keep = settings_from(args).retention_audit_days
    retained_from = datetime.now(UTC).date() - timedelta(days=keep)
    result = with_stores(args, lambda stores: stores.audit.verify(since, retained_from))
    if result.broken:
        sys.stderr.write(f"carebroker: {result.broken}\n")
        return 1
    sys.stdout.write(
        f"audit trail intact: {result.events} event(s) in {result.days} day chain(s)\n"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    convert: Callable[[audit.Row], str] = (
        (lambda row: json.dumps(to_fhir(row), ensure_ascii=False))
        if args.format == "fhir"
        else to_atna
    )

    async def export(stores: Stores, out: TextIO) -> int:
        count = 0
        rows = await stores.audit.read(since=args.since, limit=1000)
        while rows:
            out.writelines(f"{convert(row)}\n" for row in rows)
            count += len(rows)
            rows = await stores.audit.read(after=(rows[-1].day, rows[-1].seq), limit=1000)
        return count

    if args.output:
        with args.output.open("w", encoding="utf-8") as out:
            count = with_stores(args, lambda stores: export(stores, out))
        sys.stderr.write(f"{count} audit event(s) written to {args.output}\n")
    else:
        with_stores(args, lambda stores: export(stores, sys.stdout))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from broker.commands import audit_bench

    figures = asyncio.run(audit_bench.run(store_dsn(settings_from(args)), args.events))
    for figure in figures:
        sys.stdout.write(f"{figure.line()}\n")
    return 0


def _retention(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    result = with_stores(
        args, lambda stores: retention.apply(stores.partitions, settings, dry_run=args.dry_run)
    )
    verb = "would drop" if args.dry_run else "dropped"
    for policy in retention.policies(settings):
        names = result[policy.kind]
        sys.stdout.write(
            f"{policy.kind}: keep {policy.days} day(s); {verb} {len(names)} partition(s)"
            f"{': ' + ', '.join(names) if names else ''}\n"
        )
    return 0
