"""The HTTP server every carebroker process runs: health, metrics, and the roles' routes.

Roles add their routes (FHIR gateway, console API, mailbox) to one FastAPI
application; the OpenAPI document is generated from it. The socket is bound
before anything else starts so a taken port is a clear start-up error.
Deadlines, connection caps and body limits: :mod:`broker.http_limits`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from broker.errors import StartupError
from broker.health import Readiness
from broker.http_limits import BodyLimit, HttpLimits, guarded_protocol
from broker.settings import Settings

log = logging.getLogger(__name__)


def create_app(readiness: Readiness, routers: list[APIRouter] | None = None) -> FastAPI:
    """Build the FastAPI application with ``/healthz`` and the given routers."""
    app = FastAPI(
        title="carebroker",
        version="0.1.0",
        description="Regional care-coordination message broker.",
    )

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Readiness of this process",
        responses={503: {"description": "Some part is not ready; the body names it."}},
    )
    async def healthz() -> JSONResponse:
        missing = readiness.not_ready()
        body = {
            "status": "ok" if not missing else "starting",
            "components": readiness.snapshot(),
            "not_ready": missing,
        }
        return JSONResponse(body, status_code=200 if not missing else 503)

    @app.get(
        "/livez",
        tags=["operations"],
        summary="Liveness of this process",
        responses={200: {"description": "The process serves HTTP; dependencies aside."}},
    )
    async def livez() -> dict[str, str]:
        # Liveness must not follow PostgreSQL or Kafka: restarting a pod does
        # not bring a database back, it only adds churn while it is down.
        return {"status": "alive"}

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer quotes each invalid value back ("input"): a
        # password, a patient identifier. Name the parameter and the rule only.
        detail = [
            {key: error[key] for key in ("type", "loc", "msg") if key in error}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    for router in routers or []:
        app.include_router(router)
    return app


def bind(host: str, port: int, what: str = "HTTP") -> socket.socket:
    """Bind a listening TCP socket; raise StartupError naming the port when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio disables Nagle only on sockets that
    # say they are TCP, and the accepted ones inherit it. Without, a response
    # written in two parts (head, body) waits for the client's delayed ACK: 40 ms
    # on every request after the first of a keep-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "already in use" if exc.errno == 98 else (exc.strerror or "unavailable")
        raise StartupError(f"{what} port {host}:{port} is {reason}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process lifespan owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_limits(settings: Settings) -> HttpLimits:
    """Return the listener limits the settings ask for."""
    return HttpLimits(
        header_timeout_s=settings.http_header_timeout_s,
        body_timeout_s=settings.http_body_timeout_s,
        max_connections=settings.http_max_connections,
        max_connections_per_address=settings.http_max_connections_per_address,
        trusted_proxies=tuple(
            p.strip() for p in settings.http_trusted_proxies.split(",") if p.strip()
        ),
    )


def body_limits(settings: Settings) -> Callable[[str], int | None]:
    """Return each path's body limit: the FHIR gateway bounds its own (with an OperationOutcome)."""
    api = settings.http_max_api_body_bytes

    def limit_for(path: str) -> int | None:
        return None if path == "/fhir" or path.startswith("/fhir/") else api

    return limit_for


class HttpServer:
    """uvicorn serving one FastAPI app on an already-bound socket, within limits."""

    def __init__(
        self,
        app: FastAPI,
        sock: socket.socket,
        limits: HttpLimits | None = None,
        body_limit: Callable[[str], int | None] | None = None,
    ) -> None:
        self.sock = sock
        limits = limits or HttpLimits()
        self.protocol = guarded_protocol(limits)
        trusted = list(limits.trusted_proxies)
        self.server = _Server(
            uvicorn.Config(
                BodyLimit(app, body_limit) if body_limit else app,
                http=self.protocol,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=5,
                # Client addresses (sign-in throttling, refusal records, the
                # loopback check of /metrics) come from X-Forwarded-For only
                # when a trusted proxy sent it; uvicorn would trust 127.0.0.1.
                proxy_headers=bool(trusted),
                forwarded_allow_ips=trusted or "",
            )
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """Return the bound port (useful when asked for port 0)."""
        port: int = self.sock.getsockname()[1]
        return port

    async def start(self) -> None:
        """Serve in the background until :meth:`stop`."""
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests (bounded), close."""
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    async with asyncio.timeout(6):
                        await self._task
                except TimeoutError:
                    self._task.cancel()
        self.sock.close()
