"""Start the console as an administrator would: users added by command, then the console role."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import REPO
from tests.e2e.conftest import Running, carebroker_command, start_carebroker

PARTNERS = REPO / "tests" / "data" / "partners.yaml"
PASSWORD = "correct horse battery"


def users(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run ``carebroker users ...`` as a user would: only its flags say where the database is."""
    return subprocess.run(
        [*carebroker_command(), "users", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")},
    )


def users_add(database_url: str, name: str, role: str, password: str = PASSWORD) -> str:
    """Add a user with ``carebroker users add``; return its output."""
    done = users(
        "add",
        name,
        "--role",
        role,
        "--password-stdin",
        "--database-url",
        database_url,
        stdin=f"{password}\n",
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def start_console(
    tmp_path: Path,
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    roles: tuple[str, ...] = ("console",),
    config: Path = PARTNERS,
) -> Running:
    """Start ``carebroker run`` with ``roles`` (the console alone by default) on a partner file."""
    running = start_carebroker(
        tmp_path,
        *[arg for role in roles for arg in ("--role", role)],
        "--config",
        str(config),
        command="run",
        env={
            "CAREBROKER_DATABASE_URL": database_url,
            "CAREBROKER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CAREBROKER_KAFKA_FETCH_MAX_WAIT_MS": "10",  # tansu holds fetches: see Settings
            "CAREBROKER_KAFKA_TOPIC_PREFIX": topic_prefix,
            "CAREBROKER_KAFKA_PARTITIONS": "2",
        },
    )
    return running
