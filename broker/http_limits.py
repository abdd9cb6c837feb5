"""What the HTTP listener refuses to wait for or to hold: deadlines, connection caps, body sizes.

uvicorn bounds none of these: its keep-alive timeout starts only after a
first response and is reset by every byte received, so a client that sends
its headers one byte at a time (slowloris) holds a connection for ever, and
its one knob, ``limit_concurrency``, answers 503 to *every* new request once
that many connections are open, the slow ones included. carebroker keeps
uvicorn (its HTTP/1.1 parsing by h11, its ASGI plumbing) and wraps its h11
protocol class, which uvicorn lets a caller choose, with the four rules a
public-facing HTTP server needs:

- **header deadline**: a request's line and headers must have arrived
  ``header_timeout_s`` (plus up to a quarter, at random, so that a flood's
  connections do not all expire at once) after the connection opened or the
  previous response was sent, however the bytes trickle; else ``408`` and the
  connection closes;
- **body deadline**: its body must have arrived ``body_timeout_s`` after the
  headers; else the connection closes (the route sees a disconnect);
- **per-address cap**: at most ``max_connections_per_address`` connections
  from one client address (a trusted proxy is exempt: it carries everyone);
  the next one is answered ``503`` and closed;
- **total cap**: at most ``max_connections`` (4,096: a few KiB each, and 2,500
  slow clients are held until their deadline rather than churned); when full, the connection that
  has waited longest for its request is closed to make room (a slow client
  loses its place, never a client that sends its request promptly), and only
  when every connection is busy with a request is the new one answered 503.

:class:`BodyLimit` (ASGI) answers ``413`` to a body larger than its route
allows without reading it (a declared ``Content-Length``) or as soon as a
chunked body passes the limit. The FHIR gateway applies its own, larger
limit, with an OperationOutcome and the first MiB kept for operators.

Why wrap rather than replace: hypercorn's ``read_timeout`` restarts at every
read (a trickle defeats it) and it has no connection caps either; granian
(Rust, hyper) has a header timeout but runs the application in its own worker
loops, away from the roles' shared PostgreSQL pool and event loop. The
subclass below relies on uvicorn's h11 protocol (``conn``, ``client``,
``on_response_complete``), which ``tests/integration/http`` exercises.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import resource
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"retry-after: 5\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
)
# File descriptors kept for everything but HTTP connections (PostgreSQL, Kafka, MLLP, files).
_FD_RESERVE = 256
# How long an answer given before the request's body was read waits for the
# client to stop sending: closing at once would reset the connection, and the
# client (still writing) would never read the 413 or 401.
LINGER_S = 2.0


@dataclass(frozen=True)
class HttpLimits:
    """The listener's deadlines and caps (``Settings.http_*``)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_connections: int = 4096
    max_connections_per_address: int = 64
    trusted_proxies: tuple[str, ...] = ()

    def is_trusted_proxy(self, address: str) -> bool:
        """Tell whether ``address`` is one of the reverse proxies the deployer trusts."""
        return is_in(address, self.trusted_proxies)


def is_in(address: str, networks: Iterable[str]) -> bool:
    """Tell whether an IP address lies in one of ``networks`` (addresses or CIDRs)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in networks:
        try:
            if ip in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def is_loopback(address: str) -> bool:
    """Tell whether an IP address is a loopback one (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class ConnectionGuard:
    """Count a listener's connections, per address and in all; choose whom to refuse or evict."""

    def __init__(self, limits: HttpLimits) -> None:
        self.limits = limits
        self.max_connections = fd_bounded(limits.max_connections)
        self.open = 0
        self.by_address: dict[str, int] = {}
        # Connections waiting for a request, longest-waiting first.
        self.waiting: OrderedDict[int, GuardedProtocol] = OrderedDict()
        self.refused = 0
        self.evicted = 0

    def admit(self, protocol: GuardedProtocol) -> str | None:
        """Count a new connection in, or return why it is refused."""
        address = protocol.address
        crowded = self.by_address.get(address, 0) >= self.limits.max_connections_per_address
        if crowded and not self.limits.is_trusted_proxy(address):
            return "too many connections from this address"
        if self.open >= self.max_connections:
            if not self.waiting:
                return "too many connections"
            _, oldest = self.waiting.popitem(last=False)
            self.evicted += 1
            oldest.close(_408)
        self.open += 1
        self.by_address[address] = self.by_address.get(address, 0) + 1
        return None

    def release(self, protocol: GuardedProtocol) -> None:
        """Count a connection out (it closed, whatever the reason)."""
        self.waiting.pop(id(protocol), None)
        self.open -= 1
        left = self.by_address.get(protocol.address, 1) - 1
        if left > 0:
            self.by_address[protocol.address] = left
        else:
            self.by_address.pop(protocol.address, None)

    def set_waiting(self, protocol: GuardedProtocol, waiting: bool) -> None:
        """Note whether a connection waits for a request (it may be evicted) or is busy."""
        if waiting:
            self.waiting[id(protocol)] = protocol
            self.waiting.move_to_end(id(protocol))
        else:
            self.waiting.pop(id(protocol), None)


def fd_bounded(wanted: int) -> int:
    """Return how many connections this process can hold, raising its file limit if it may.

    An ``accept`` that fails for want of file descriptors stops the whole
    listener for a second (asyncio), which would be worse than any cap.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + _FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted
    bounded = max(16, soft - _FD_RESERVE)
    log.warning(
        "HTTP connections capped at %d: the file descriptor limit is %d (raise `ulimit -n`)",
        bounded,
        soft,
    )
    return bounded


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol with deadlines and the guard's admission; see the module doc."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.address = ""
        self._counted = False
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = ""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Lingering(transport, self))  # type: ignore[arg-type]
        self.address = self.client[0] if self.client else ""
        refusal = self.guard.admit(self)
        if refusal is not None:
            self.guard.refused += 1
            body = f"{refusal}; retry later\n".encode()
            self.close(_503 % (len(body), body))
            return
        self._counted = True
        self._await_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted:
            self._counted = False
            self.guard.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # the answer is given: the rest of a refused body is read and dropped
        super().data_received(data)
        self._follow()

    def eof_received(self) -> None:
        transport = self.transport
        if isinstance(transport, _Lingering) and transport.lingering:
            transport.real.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def close(self, answer: bytes = b"") -> None:
        """Answer (raw bytes: h11 cannot answer a request it has not read) and close."""
        self._disarm()
        transport = self.transport
        real = transport.real if isinstance(transport, _Lingering) else transport
        if not transport.is_closing():
            if answer:
                real.write(answer)
            real.close()

    # --- deadlines ------------------------------------------------------------------

    def _follow(self) -> None:
        """Arm the deadline the request's state calls for, after h11 read what arrived."""
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._phase != "headers":
                self._await_request()
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body", self.guard.limits.body_timeout_s)
                self.guard.set_waiting(self, False)
        elif self._phase:
            # The request is in: the route may take its time, the client is not waited for.
            self._disarm()
            self.guard.set_waiting(self, False)

    def _await_request(self) -> None:
        # Up to a quarter more, at random: connections opened together by a
        # flood must not all expire (and come back) in the same instant.
        jitter = 1.0 + random.random() / 4  # noqa: S311 - spreading timers, not a secret
        self._arm("headers", self.guard.limits.header_timeout_s * jitter)
        self.guard.set_waiting(self, True)

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._phase = phase
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = ""

    def _expired(self) -> None:
        self._deadline = None
        if self._phase == "headers":
            self.close(_408 if self.cycle is None or self.cycle.response_complete else b"")
        else:
            self.close()


class _Lingering:
    """The connection's transport, whose ``close`` lets a client finish sending first.

    When uvicorn closes a connection whose request body was not read to the
    end (a 413 or 401 answered early), the answer is sent, the sending side
    shut (FIN), and what still arrives read and dropped until the client
    closes or ``LINGER_S`` passes: as nginx's ``lingering_close`` does.
    """

    def __init__(self, real: asyncio.Transport, protocol: GuardedProtocol) -> None:
        self.real = real
        self.protocol = protocol
        self.lingering = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def is_closing(self) -> bool:
        return self.lingering or self.real.is_closing()

    def close(self) -> None:
        if self.lingering or self.real.is_closing():
            return
        unread = self.protocol.conn.their_state is h11.SEND_BODY
        if not unread or not self.real.can_write_eof():
            self.real.close()
            return
        self.lingering = True
        self.real.write_eof()
        self.real.resume_reading()
        self.protocol.loop.call_later(LINGER_S, self.real.close)


def guarded_protocol(limits: HttpLimits) -> type[GuardedProtocol]:
    """Return a protocol class bound to one listener's guard (uvicorn makes one per connection)."""
    return type("Guarded", (GuardedProtocol,), {"guard": ConnectionGuard(limits)})


# --- bodies -------------------------------------------------------------------------------

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuse (413) a request body larger than its route's limit.

    ``limit_for(path)`` returns the limit in bytes, or None for routes that
    bound their own bodies (the FHIR gateway). A declared ``Content-Length``
    over the limit is answered before a byte of the body is read; a chunked
    body is cut off as soon as it passes the limit. Either way the connection
    is closed after the answer, so the rest of the body is never read.
    """

    def __init__(self, app: Any, limit_for: Callable[[str], int | None]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        received = 0
        started = answered = False

        async def counted() -> Any:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started:
                        await _too_large(send, limit)
                    answered = True
                    raise _TooLarge
            return message

        async def watched(message: dict[str, Any]) -> None:
            nonlocal started
            if answered:  # what the route says after its body was cut off goes nowhere
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        # The route may turn the cut-off into an error answer of its own: dropped above.
        with contextlib.suppress(_TooLarge):
            await self.app(scope, counted, watched)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = b'{"detail":"request body larger than %d bytes: refused unread"}' % limit
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
