"""``carebroker users``: add console users, list them, reset a password, issue API tokens.

The database is the one ``carebroker run`` would use (``--database-url`` or
``CAREBROKER_DATABASE_URL``); without one, the embedded PostgreSQL of
``--data-dir`` (what ``carebroker up`` uses): reached on its port while ``up``
runs, else started for the duration of the command. Changes are audited with
the operating-system account that ran the command (``cli:<account>``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import pwd
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from broker.commands.options import settings_from
from broker.console.sessions import Sessions
from broker.console.users import USER_ROLES, UserError, Users, check_password
from broker.errors import ConfigError
from broker.events import AuditEvent
from broker.local import EmbeddedPostgres, embedded_dsn
from broker.settings import Settings
from broker.store.accounts import AccountStore
from broker.store.stores import Stores


def register(commands: Any) -> None:
    """Add ``users add|list|password|token``."""
    users = commands.add_parser("users", help="console users: add, list, password, token")
    sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="add a console user")
    add.add_argument("name", help="user name (lower-case letters, digits, . _ @ -)")
    add.add_argument("--role", choices=USER_ROLES, required=True, help="viewer, operator or admin")
    _password_options(add)
    _store_options(add)
    add.set_defaults(handler=_run(_add))

    listing = sub.add_parser("list", help="list console users")
    _store_options(listing)
    listing.set_defaults(handler=_run(_list))

    password = sub.add_parser("password", help="set a user's password (signs them out)")
    password.add_argument("name")
    _password_options(password)
    _store_options(password)
    password.set_defaults(handler=_run(_password))

    token = sub.add_parser(
        "token", help="issue an API token for scripts (Authorization: Bearer TOKEN)"
    )
    token.add_argument("name", help="the user the token acts as (with that user's role)")
    token.add_argument(
        "--days",
        type=int,
        default=90,
        help="lifetime in days (default 90, at most CAREBROKER_CONSOLE__API_TOKEN_MAX_DAYS: 365)",
    )
    token.add_argument("--label", default="", help="what the token is for, shown in the audit")
    _store_options(token)
    token.set_defaults(handler=_run(_token))


def _password_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of a prompt",
    )


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", metavar="DSN", help="PostgreSQL DSN")
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="the data dir of `carebroker up` when no database URL is set (default ./.carebroker)",
    )


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise UserError("the two passwords differ")
    else:
        raise UserError("no terminal to ask for the password: pass --password-stdin")
    check_password(password)
    return password


def _actor() -> str:
    return f"cli:{pwd.getpwuid(os.getuid()).pw_name}"


Action = Callable[[argparse.Namespace, AccountStore, Settings], Awaitable[int]]


def _run(action: Action) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        settings = settings_from(args)

        async def main() -> int:
            async with _stores(settings) as stores:
                return await action(args, stores.accounts, settings)

        return asyncio.run(main())

    return handler


@asynccontextmanager
async def _stores(settings: Settings) -> AsyncIterator[Stores]:
    """Open the configured database, or the data dir's embedded one, migrated."""
    dsn = settings.database_dsn()
    server: EmbeddedPostgres | None = None
    if dsn is None:
        dsn = embedded_dsn(settings.data_dir)
        if dsn is None:
            if not (settings.data_dir / "postgres" / "PG_VERSION").exists():
                raise ConfigError(
                    f"no database: set CAREBROKER_DATABASE_URL (or --database-url), or run "
                    f"`carebroker up` once with --data-dir {settings.data_dir}"
                )
            server = EmbeddedPostgres(settings.data_dir)
            await server.start()
            dsn = server.owner_dsn
    try:
        async with Stores.open(dsn, settings, size=2) as stores:
            await stores.migrate()
            yield stores
    finally:
        if server is not None:
            await server.stop()


async def _add(args: argparse.Namespace, store: AccountStore, _: Settings) -> int:
    password = _read_password(args)
    user = await Users(store).add(args.name, args.role, password, _actor())
    sys.stdout.write(f"user {user.name} added with role {user.role}\n")
    return 0


async def _list(args: argparse.Namespace, store: AccountStore, _: Settings) -> int:
    for user in await Users(store).list():
        state = "disabled" if user.disabled else "active"
        last = user.last_sign_in_at.isoformat(timespec="seconds") if user.last_sign_in_at else "-"
        sys.stdout.write(f"{user.name}\t{user.role}\t{state}\tlast sign-in {last}\n")
    return 0


async def _password(args: argparse.Namespace, store: AccountStore, _: Settings) -> int:
    password = _read_password(args)
    await Users(store).update(args.name, _actor(), password=password)
    sys.stdout.write(f"password of {args.name} set; their sessions are signed out\n")
    return 0


async def _token(args: argparse.Namespace, store: AccountStore, settings: Settings) -> int:
    console = settings.console
    if not 1 <= args.days <= console.api_token_max_days:
        raise UserError(
            f"--days must be between 1 and {console.api_token_max_days} "
            "(CAREBROKER_CONSOLE__API_TOKEN_MAX_DAYS)"
        )
    sessions = Sessions(
        store,
        idle_timeout_s=console.session_idle_timeout_s,
        lifetime_s=console.session_lifetime_s,
        api_max_days=console.api_token_max_days,
    )
    async with store.transaction() as work:
        if not await work.users.is_active(args.name):
            raise UserError(f"no active user {args.name!r}")
        token, session = await sessions.open(
            work, args.name, "api", lifetime=timedelta(days=args.days), label=args.label
        )
        await work.audit.record(
            [
                AuditEvent(
                    kind="user_changed",
                    actor=_actor(),
                    detail={
                        "user": args.name,
                        "action": "api_token_issued",
                        "session": str(session.id),
                        "label": args.label,
                        "expires_at": session.expires_at.isoformat(),
                    },
                )
            ],
        )
    sys.stderr.write(
        f"API token for {args.name} (role {session.role}), valid until "
        f"{session.expires_at.isoformat(timespec='minutes')}; it is shown once:\n"
    )
    sys.stdout.write(f"{token}\n")
    return 0
