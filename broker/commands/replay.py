"""``carebroker replay``: re-deliver from the store, by message, partner or time range."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker.commands.connect import operator, stores
from broker.commands.options import add_store_options, settings_from
from broker.directory import Directory, load_directory
from broker.errors import ConfigError
from routing.replay import DEAD_LETTERS, ReplayResult, Selection, replay


def register(commands: Any) -> None:
    """Add ``replay``."""
    parser = commands.add_parser(
        "replay",
        help="re-deliver dead letters (or more) from the store",
        description="Put deliveries back to pending so the delivery role sends them again. "
        "By default only dead letters (failed, dead) are replayed, so nothing a partner "
        "already acknowledged is sent twice. Select by --message, --partner (the recipient) "
        "and/or --since/--until (acceptance time); at least one is required.",
    )
    parser.add_argument("--message", type=uuid.UUID, metavar="ID", help="carebroker message id")
    parser.add_argument("--partner", metavar="ID", help="recipient partner id")
    parser.add_argument("--since", type=_time, metavar="TIME", help="accepted at or after (ISO)")
    parser.add_argument("--until", type=_time, metavar="TIME", help="accepted before (ISO)")
    parser.add_argument(
        "--status",
        action="append",
        choices=("failed", "dead", "blocked", "pending"),
        help="delivery statuses to replay (repeatable; default failed and dead)",
    )
    parser.add_argument(
        "--include-delivered",
        action="store_true",
        help="also re-send what partners acknowledged (they see the same control id again)",
    )
    parser.add_argument(
        "--unroutable",
        action="store_true",
        help="also route again unroutable messages in the range (--partner is then the sender)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="partner file for re-rendering (default: the version stored in PostgreSQL)",
    )
    add_store_options(parser)
    parser.set_defaults(handler=_replay)


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _replay(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    selection = Selection(
        message_id=args.message,
        partner=args.partner,
        since=args.since,
        until=args.until,
        statuses=tuple(args.status or DEAD_LETTERS),
        include_delivered=args.include_delivered,
        unroutable=args.unroutable,
    )
    if selection.is_empty():
        raise ConfigError("say what to replay: --message ID, --partner ID and/or --since TIME")

    async def run() -> ReplayResult:
        async with stores(settings) as found:
            directory: Directory
            if settings.config is not None:
                directory = load_directory(settings.config)
            else:
                stored = await found.directory.current()
                directory = stored.directory if stored else Directory.empty()
            return await replay(
                found.routing,
                directory,
                selection,
                actor=operator(),
                topic_prefix=settings.kafka_topic_prefix,
            )

    result = asyncio.run(run())
    sys.stdout.write(
        f"replayed {result.deliveries} delivery(ies); "
        f"{result.rerouted} unroutable message(s) routed again\n"
    )
    for line in result.skipped:
        sys.stdout.write(f"skipped {line}\n")
    return 0
