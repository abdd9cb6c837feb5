"""Who may read ``/metrics`` and ``GET /api/alerts``: the deployer chooses, loopback by default.

Both show the whole deployment's traffic per partner and its alerts, without
a console session (Prometheus and alert managers have none). So that they are
never open beyond the machine by default, a request is admitted when:

- ``CAREBROKER_METRICS_TOKEN`` is set and the request carries it as
  ``Authorization: Bearer`` (on any listener); or
- no token is set and the request came to the metrics listener
  (``CAREBROKER_METRICS_PORT``), which the deployer exposes only to the
  scraper (a NetworkPolicy, a firewall, an internal interface); or
- no token and no metrics listener, and the client is on loopback
  (127.0.0.0/8, ::1) as uvicorn saw it: the address of the connection, or
  the X-Forwarded-For of a trusted proxy (``CAREBROKER_HTTP_TRUSTED_PROXIES``).

Anything else is 401 (a token is set) or 403 naming the settings.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

from broker.http_limits import is_loopback

# Set on the FastAPI app of the metrics listener (broker/app.py).
METRICS_LISTENER = "metrics_listener"
OPERATIONS_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "CAREBROKER_METRICS_TOKEN is set and the request lacks it."},
    403: {"description": "Neither a token nor a metrics listener: loopback clients only."},
}


async def require_operations_access(request: Request) -> None:
    """Admit a request to /metrics or GET /api/alerts, or raise 401/403 (FastAPI dependency)."""
    settings = request.app.state.context.settings
    if settings.metrics_token is not None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expected = settings.metrics_token.get_secret_value()
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), expected.encode()
        ):
            raise HTTPException(
                401, "a metrics token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        return
    if getattr(request.app.state, METRICS_LISTENER, False):
        return
    client = request.client.host if request.client else ""
    if not is_loopback(client):
        raise HTTPException(
            403,
            "served to loopback clients only: set CAREBROKER_METRICS_TOKEN or "
            "CAREBROKER_METRICS_PORT to reach it from elsewhere",
        )
