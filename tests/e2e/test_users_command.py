"""`carebroker users` as an administrator uses it, against a real PostgreSQL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import Running, carebroker_command, start_carebroker
from tests.e2e.console import PARTNERS, PASSWORD, start_console, users

pytestmark = pytest.mark.e2e


async def test_add_list_password_and_token(
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    carebroker: list[Running],
    pool: asyncpg.Pool,
) -> None:
    db = ("--database-url", database_url)
    added = users("add", "claire", "--role", "admin", "--password-stdin", *db, stdin=PASSWORD)
    assert added.returncode == 0, added.stderr
    assert added.stdout == "user claire added with role admin\n"

    again = users("add", "claire", "--role", "viewer", "--password-stdin", *db, stdin=PASSWORD)
    assert again.returncode == 1
    assert again.stderr == "carebroker: error: user 'claire' already exists\n"
    weak = users("add", "bob", "--role", "viewer", "--password-stdin", *db, stdin="short")
    assert weak.returncode == 1 and "password too short" in weak.stderr
    trivial = users(
        "add", "bob", "--role", "viewer", "--password-stdin", *db, stdin="Password2024!"
    )
    assert trivial.returncode == 1 and "password too weak" in trivial.stderr
    assert "Password2024" not in trivial.stderr
    bad_name = users(
        "add", "Bob Smith", "--role", "viewer", "--password-stdin", *db, stdin=PASSWORD
    )
    assert bad_name.returncode == 1 and "invalid user name 'Bob Smith'" in bad_name.stderr
    # No terminal and no --password-stdin: a clear refusal, not a hang.
    no_tty = users("add", "bob", "--role", "viewer", *db)
    assert no_tty.returncode == 1 and "--password-stdin" in no_tty.stderr
    bad_role = users("add", "bob", "--role", "root", "--password-stdin", *db, stdin=PASSWORD)
    assert bad_role.returncode == 2 and "invalid choice: 'root'" in bad_role.stderr

    listed = users("list", *db)
    assert listed.returncode == 0
    assert listed.stdout.startswith("claire\tadmin\tactive\tlast sign-in -")

    event = await pool.fetchval("SELECT event FROM audit_pending ORDER BY id DESC LIMIT 1")
    assert event["kind"] == "user_changed" and event["actor"].startswith("cli:")
    assert event["detail"] == {"user": "claire", "action": "created", "role": "admin"}

    # An API token works against a running console, with the user's role, no CSRF token.
    century = users("token", "claire", "--days", "36500", *db)
    assert century.returncode == 1
    assert "CAREBROKER_CONSOLE__API_TOKEN_MAX_DAYS" in century.stderr
    token = users("token", "claire", "--days", "7", "--label", "nightly export", *db)
    assert token.returncode == 0, token.stderr
    assert "valid until" in token.stderr
    running = start_console(tmp_path, database_url, kafka_bootstrap, topic_prefix)
    carebroker.append(running)
    running.wait_healthy(60)
    assert f"carebroker console: http://127.0.0.1:{running.http_port}/console/" in running.output()
    bearer = {"Authorization": f"Bearer {token.stdout.strip()}"}
    async with httpx.AsyncClient(base_url=running.url) as http:
        assert (await http.get("/api/users", headers=bearer)).status_code == 200
        reload = await http.post("/api/partners/reload", headers=bearer)
        assert reload.status_code == 200 and reload.json()["partners"] == 5

        # A new password signs the user out everywhere, API tokens included.
        changed = users("password", "claire", "--password-stdin", *db, stdin="another long one")
        assert changed.returncode == 0, changed.stderr
        assert (await http.get("/api/users", headers=bearer)).status_code == 401
        signed_in = await http.post(
            "/api/session",
            json={"name": "claire", "password": "another long one", "client": "cli"},
        )
        assert signed_in.status_code == 200, running.output()


def test_without_a_database_it_says_how_to_get_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [*carebroker_command(), "users", "list", "--data-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "no database: set CAREBROKER_DATABASE_URL (or --database-url)" in result.stderr


def test_newcomer_adds_a_user_to_carebroker_up_and_signs_in(
    tmp_path: Path, carebroker: list[Running]
) -> None:
    running = start_carebroker(tmp_path, "--config", str(PARTNERS))
    carebroker.append(running)
    running.wait_healthy(90)
    data = ("--data-dir", str(running.data_dir))
    # While `up` runs, the command reaches its embedded PostgreSQL.
    added = users("add", "alice", "--role", "operator", "--password-stdin", *data, stdin=PASSWORD)
    assert added.returncode == 0, added.stderr
    signed_in = httpx.post(
        f"{running.url}/api/session", json={"name": "alice", "password": PASSWORD}
    )
    assert signed_in.status_code == 200, running.output()
    page = httpx.get(f"{running.url}/console/flows", cookies=signed_in.cookies)
    assert page.status_code == 200 and "alice" in page.text
    running.stop()
    assert running.process.returncode == 0, running.output()
    # Once it stopped, the command starts that PostgreSQL for itself, then stops it.
    listed = users("list", *data)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("alice\toperator\tactive\tlast sign-in 20")
    assert not (running.data_dir / "postgres" / "postmaster.pid").exists()
