"""Every state-changing console endpoint refuses: no session, wrong role, missing CSRF token.

The table below lists each one with the lowest role allowed; a test fails if a
state-changing route is added to the console without a row here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from broker.console.role import ROUTERS
from broker.console.users import USER_ROLES
from tests.integration.console.conftest import cli_token, sign_in
from tests.integration.console.traffic import add_message
from tests.messages import ORU

ANY_ID = str(uuid.uuid4())
ALERT = {"name": "dead_letters", "subject": "cabinet-dupont"}


@dataclass(frozen=True)
class Change:
    """One state-changing endpoint and what a valid call sends."""

    method: str
    path: str
    minimum: str
    json: dict[str, Any] | None = None


CHANGES = [
    Change("DELETE", "/api/session", "viewer"),
    Change(
        "POST",
        "/api/users",
        "admin",
        {"name": "new-user", "role": "viewer", "password": "plum lantern orbit 42"},
    ),
    Change("PATCH", "/api/users/{name}", "admin", {"role": "operator"}),
    Change("POST", "/api/partners/reload", "admin"),
    Change("POST", "/api/messages/{message_id}/replay", "operator", {"reason": "test"}),
    Change(
        "POST", "/api/dead-letters/retry", "operator", {"delivery_ids": [ANY_ID], "reason": "r"}
    ),
    Change(
        "POST", "/api/dead-letters/discard", "operator", {"delivery_ids": [ANY_ID], "reason": "r"}
    ),
    Change("POST", "/api/partners/{partner}/pause", "operator", {"reason": "maintenance"}),
    Change("POST", "/api/partners/{partner}/resume", "operator", {"reason": "done"}),
    Change("POST", "/api/alerts/acknowledge", "operator", {**ALERT, "reason": "on it"}),
    Change("POST", "/api/alerts/silence", "operator", {**ALERT, "reason": "known", "hours": 1}),
    Change("POST", "/api/alerts/unsilence", "operator", ALERT),
    # Changes nothing but audits a patient search: a POST, so CSRF-protected all the same.
    Change("POST", "/api/messages/search", "viewer", {"control_id": "LS-0001"}),
]
# Sign-in opens a session, so it cannot require one; its CSRF defence (JSON
# only, same origin) is tested in test_auth.py.
OPEN = {("POST", "/api/session")}
ROLE_OF = {"viewer": "vera", "operator": "otto", "admin": "ada"}


@pytest.fixture
async def seeded(pool: asyncpg.Pool) -> str:
    """A message to act on and an alert firing, so that allowed calls succeed; the message id."""
    message_id, received_at = await add_message(pool, "labo-sud")
    await pool.execute(
        "INSERT INTO payloads (message_id, received_at, data) VALUES ($1, $2, $3)",
        message_id,
        received_at,
        ORU,
    )
    await pool.execute(
        "INSERT INTO alerts (name, subject, since, last_seen) VALUES ($1, $2, now(), now())",
        ALERT["name"],
        ALERT["subject"],
    )
    return str(message_id)


def _path(path: str, message_id: str) -> str:
    return (
        path.replace("{name}", "vera")
        .replace("{message_id}", message_id)
        .replace("{partner}", "cabinet-dupont")
    )


def _call(change: Change, message_id: str) -> tuple[str, str, dict[str, Any] | None]:
    return change.method, _path(change.path, message_id), change.json


def test_the_table_covers_every_state_changing_route() -> None:
    routes = {
        (method, route.path)
        for router in ROUTERS
        for route in router.routes
        for method in getattr(route, "methods", set())
        if method not in {"GET", "HEAD", "OPTIONS"}
    }
    assert routes == {(c.method, c.path) for c in CHANGES} | OPEN


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: f"{c.method} {c.path}")
async def test_no_session_is_refused(
    change: Change, client: httpx.AsyncClient, users: dict[str, str], seeded: str
) -> None:
    method, path, body = _call(change, seeded)
    response = await client.request(method, path, json=body)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    forged = await client.request(
        method, path, json=body, headers={"Authorization": "Bearer not-a-token"}
    )
    assert forged.status_code == 401


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: f"{c.method} {c.path}")
async def test_missing_or_wrong_csrf_token_is_refused(
    change: Change, client: httpx.AsyncClient, users: dict[str, str], seeded: str
) -> None:
    csrf = await sign_in(client, ROLE_OF[change.minimum])
    method, path, body = _call(change, seeded)
    missing = await client.request(method, path, json=body)
    assert missing.status_code == 403 and "CSRF" in missing.json()["detail"]
    wrong = await client.request(method, path, json=body, headers={"X-CSRF-Token": csrf[::-1]})
    assert wrong.status_code == 403 and "CSRF" in wrong.json()["detail"]
    foreign = await client.request(
        method, path, json=body, headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    allowed = await client.request(method, path, json=body, headers={"X-CSRF-Token": csrf})
    assert allowed.status_code < 300, allowed.text


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: f"{c.method} {c.path}")
async def test_roles_below_the_minimum_are_refused(
    change: Change, client: httpx.AsyncClient, users: dict[str, str], seeded: str
) -> None:
    method, path, body = _call(change, seeded)
    rank = USER_ROLES.index(change.minimum)  # type: ignore[arg-type]
    for role in USER_ROLES:
        token = await cli_token(client, ROLE_OF[role])
        response = await client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        if USER_ROLES.index(role) < rank:
            assert response.status_code == 403, (role, response.text)
            assert change.minimum in response.json()["detail"]
        else:
            assert response.status_code < 300, (role, response.text)
            break  # the call changed state; one allowed role proves the rule


@pytest.mark.parametrize(
    ("path", "minimum"),
    [
        ("/api/flows", "viewer"),
        ("/api/partners", "viewer"),
        ("/api/users", "admin"),
        ("/api/dead-letters", "viewer"),
        ("/api/alerts/state", "viewer"),
        ("/api/messages/{message_id}/audit", "viewer"),
        ("/api/messages/{message_id}/content", "operator"),
    ],
)
async def test_reads_need_a_session_and_the_role(
    path: str, minimum: str, client: httpx.AsyncClient, users: dict[str, str], seeded: str
) -> None:
    path = _path(path, seeded)
    assert (await client.get(path)).status_code == 401
    for role in USER_ROLES:
        token = await cli_token(client, ROLE_OF[role])
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        expected = 200 if USER_ROLES.index(role) >= USER_ROLES.index(minimum) else 403  # type: ignore[arg-type]
        assert response.status_code == expected, (role, path)
