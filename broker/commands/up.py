"""``carebroker up`` (every role, embedded defaults) and ``carebroker run --role R``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from broker import logs
from broker.app import serve
from broker.commands.options import add_service_options, settings_from
from broker.settings import ROLES, Role


def register(commands: Any) -> None:
    """Add ``up``, ``run`` and ``migrate``."""
    up = commands.add_parser(
        "up",
        help="run every role in one process (embedded PostgreSQL and Kafka if none set)",
        description="Run carebroker with every role in one process. With no database "
        "configured it starts an embedded PostgreSQL in --data-dir; with no Kafka "
        "configured it starts a local Kafka-compatible broker.",
    )
    add_service_options(up)
    up.set_defaults(handler=_up)

    run = commands.add_parser(
        "run",
        help="run chosen roles against configured PostgreSQL and Kafka",
        description="Run one or more roles against CAREBROKER_DATABASE_URL and "
        "CAREBROKER_KAFKA_BOOTSTRAP_SERVERS (for deployments that scale roles apart).",
    )
    run.add_argument(
        "--role",
        action="append",
        choices=ROLES,
        required=True,
        help="role to run; repeat for several",
    )
    add_service_options(run)
    run.set_defaults(handler=_run)

    migrate = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate.add_argument("--database-url", metavar="DSN", help="PostgreSQL DSN")
    migrate.set_defaults(handler=_migrate)


def _announce(line: str) -> None:
    sys.stdout.write(f"carebroker {line}\n")
    sys.stdout.flush()


def _up(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    logs.configure(settings.log_level)
    asyncio.run(serve(settings, ROLES, local=True, announce=_announce))
    _announce("stopped")
    return 0


def _run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    logs.configure(settings.log_level)
    roles: list[Role] = list(dict.fromkeys(args.role))
    asyncio.run(serve(settings, roles, local=False, announce=_announce))
    _announce("stopped")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from broker.errors import ConfigError
    from broker.store.stores import Stores

    settings = settings_from(args)
    dsn = settings.database_dsn()
    if dsn is None:
        raise ConfigError("CAREBROKER_DATABASE_URL (or --database-url) is required")

    async def apply() -> list[str]:
        async with Stores.open(dsn, settings, size=2) as stores:
            applied = await stores.migrate()
            await stores.partitions.ensure()
            return applied

    applied = asyncio.run(apply())
    _announce(f"migrations applied: {', '.join(applied) or 'none (schema current)'}")
    return 0
