"""The embedded PostgreSQL of `carebroker up` trusts nobody, and the roles work as carebroker_app.

Tests run as root; the other local user is ``nobody``, switched to with
``setpriv`` for one command at a time. A data dir made before passwords
(``initdb --auth=trust``) is converted at its next start.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

import asyncpg
import pytest

from broker.local import (
    PG_APP_ROLE,
    PG_SYSTEM_USER,
    SECRET_FILE,
    EmbeddedPostgres,
    _pg_bin,
    dsn_of,
    read_secret,
)
from tests.conftest import REPO
from tests.e2e.conftest import Running, carebroker_command, start_carebroker

pytestmark = pytest.mark.e2e
PARTNERS = REPO / "tests" / "data" / "partners.yaml"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")}


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a command as the local user ``nobody`` (no password, no .pgpass of ours)."""
    if os.geteuid() != 0:
        pytest.skip("switching to another local user (nobody) needs root; the suite runs as root")
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--reset-env", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def psql_as_nobody(port: int, user: str) -> subprocess.CompletedProcess[str]:
    return as_nobody(
        str(_pg_bin() / "psql"),
        *("-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", "carebroker", "-w"),
        *("-c", "SELECT count(*) FROM users"),
    )


def embedded_port(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[3])


async def test_other_local_users_cannot_connect_and_the_roles_cannot_rewrite_the_audit_trail(
    tmp_path: Path, carebroker: list[Running]
) -> None:
    running = start_carebroker(tmp_path, "--config", str(PARTNERS), env=ENV)
    carebroker.append(running)
    running.wait_healthy(90)
    data_dir = running.data_dir
    port = embedded_port(data_dir)

    # Another local account: no way in, as the owner or as the application.
    for user in ("postgres", PG_APP_ROLE):
        refused = psql_as_nobody(port, user)
        assert refused.returncode != 0, refused.stdout
        assert "password" in refused.stderr, refused.stderr
    secret = data_dir / SECRET_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.stat().st_uid == os.geteuid()
    unreadable = as_nobody("cat", str(secret))
    assert unreadable.returncode != 0 and "Permission denied" in unreadable.stderr

    passwords = read_secret(data_dir)
    owner = await asyncpg.connect(dsn_of(port, passwords["postgres"], "owner"))
    try:
        sessions = await owner.fetch(
            "SELECT usename, count(*) AS n FROM pg_stat_activity"
            " WHERE datname = 'carebroker' AND pid <> pg_backend_pid() GROUP BY usename"
        )
        by_role = {r["usename"]: r["n"] for r in sessions}
        # The roles' pool is the application role's; the owner keeps two connections
        # for upkeep (partitions, retention).
        assert by_role.get(PG_APP_ROLE, 0) >= 2, by_role
        assert by_role.get("postgres", 0) <= 2, by_role
        assert not await owner.fetchval(
            "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = $1",
            PG_APP_ROLE,
        )
    finally:
        await owner.close()

    app = await asyncpg.connect(dsn_of(port, passwords[PG_APP_ROLE], "app"))
    try:
        assert await app.fetchval("SELECT count(*) FROM audit") >= 0  # it may read the trail
        for statement in (
            "UPDATE audit SET actor = 'someone else'",
            "DELETE FROM audit",
            "TRUNCATE audit",
            "ALTER TABLE audit DISABLE TRIGGER ALL",
            "SET session_replication_role = replica",  # what a superuser skips triggers with
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(statement)
    finally:
        await app.close()

    # The operator commands reach it as its owner, through the data dir.
    for command in (
        ["users", "add", "claire", "--role", "admin", "--password-stdin"],
        ["audit", "verify"],
    ):
        done = subprocess.run(
            [*carebroker_command(), *command, "--data-dir", str(data_dir)],
            input="correct horse battery staple\n",
            env=ENV,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    # Run by someone who cannot read the passwords, they say what to do.
    denied = as_nobody(*carebroker_command(), "audit", "verify", "--data-dir", str(data_dir))
    assert denied.returncode == 2, denied.stderr
    assert "cannot read" in denied.stderr
    assert "run this as the account that runs `carebroker up`" in denied.stderr


async def test_a_data_dir_from_before_passwords_is_converted_at_its_next_start(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "old"
    pgdata = data_dir / "postgres"
    pgdata.mkdir(parents=True)
    user = pwd.getpwnam(PG_SYSTEM_USER) if os.geteuid() == 0 else None
    data_dir.chmod(0o755)
    tmp_path.chmod(0o755)
    if user is not None:
        os.chown(pgdata, user.pw_uid, user.pw_gid)
    pgdata.chmod(0o700)
    subprocess.run(  # what `carebroker up` did before: everyone trusted
        [str(_pg_bin() / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust"],
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        capture_output=True,
        check=True,
    )
    server = EmbeddedPostgres(data_dir)
    await server.start()
    try:
        refused = psql_as_nobody(server.port, "postgres")
        assert refused.returncode != 0 and "password" in refused.stderr, refused.stderr
        conn = await asyncpg.connect(server.owner_dsn)
        assert await conn.fetchval("SELECT current_user") == "postgres"
        await conn.close()
    finally:
        await server.stop()
