"""MLLP over TCP (HL7 v2.5.1 Appendix C): an asyncio server and a small client.

Server: many connections, each one ordered stream: the next frame is read
only after the answer to the previous one is written (domain-requirements
§1.1: many senders wait for each ACK, and a receiver must not reorder).
Frames are read with :class:`FrameReader` (split reads, several frames per
read, a size limit whose overflow is reported, not buffered). A connection
idle longer than ``idle_timeout_s`` while waiting for a frame is closed.
Nothing a peer sends can stop the listener: the handler never raises on
input, and transport errors end only their own connection.

What peers can make the listener hold is bounded (:class:`Limits`): open
connections, in all and per source address (one more is closed at once,
before any TLS handshake, and counted in
``carebroker_mllp_connections_refused_total``); bytes of frames in progress
across all connections (:class:`FrameBudget`: a frame beyond it is answered
AR, resend later); bytes outside any frame (the connection is closed).

TLS is optional; with a client CA it is mutual TLS, and the verified client
certificate's subject travels with every frame (:class:`Peer`) so that
ingress can check it names the same partner as MSH-4. The source address
travels too: ingress checks it against the partner's ``networks``.

Client: :class:`MllpClient` sends one message and awaits the answer frame,
with a timeout; it is carebroker's one MLLP client, used by the delivery
transport (``routing/transports/mllp.py``), ``carebroker bench`` and the
tests. Its errors name the peer and the cause (``connection refused``), never
message content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from prometheus_client import Counter, Gauge

from adapters.hl7v2.framing import (
    Frame,
    FrameBudget,
    FrameReader,
    StrayBytesError,
    frame,
)
from broker.errors import ConfigError, DeliveryTimeoutError, TransientError
from broker.metrics import PROCESS_REGISTRY

log = logging.getLogger(__name__)

# The stream buffer of a connection: the most it reads ahead of the frame it
# is working on is about twice this (asyncio pauses reading past 2 x limit).
STREAM_LIMIT = 64 * 1024
REFUSAL_LOG_INTERVAL_S = 60.0

_OPEN = Gauge(
    "carebroker_mllp_connections_open",
    "MLLP connections open in this process.",
    registry=PROCESS_REGISTRY,
)
_REFUSED = Counter(
    "carebroker_mllp_connections_refused",
    "MLLP connections closed by this process on arrival: too many in all or from one address.",
    ["reason"],
    registry=PROCESS_REGISTRY,
)
_DROPPED = Counter(
    "carebroker_mllp_connections_dropped",
    "MLLP connections this process closed for what the peer sent (bytes outside any frame).",
    ["reason"],
    registry=PROCESS_REGISTRY,
)
_OVERLOADED = Counter(
    "carebroker_mllp_frames_overloaded",
    "MLLP frames answered AR (resend later) because frames in progress held the whole budget.",
    registry=PROCESS_REGISTRY,
)


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a connection: source address, and the verified certificate.

    ``host`` is the IP address the connection comes from ("" when the input
    did not come over the network); ``certificate_subject`` the verified client
    certificate's subject (RFC 4514), ``certificate_cn`` its common name.
    """

    host: str
    port: int = 0
    certificate_cn: str | None = None
    certificate_subject: str | None = None

    @property
    def address(self) -> str:
        """Return ``host:port`` as operators read it (``[v6]:port``), or ``-``."""
        if not self.host:
            return "-"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Limits:
    """What peers may make one listener hold (``MllpSettings``; docs/security.md)."""

    max_frame_bytes: int
    idle_timeout_s: float
    max_connections: int = 1000
    max_connections_per_peer: int = 50
    max_buffered_bytes: int = 128 * 1024 * 1024
    max_stray_bytes: int = 16 * 1024


FrameHandler = Callable[[Frame, Peer], Awaitable[bytes | None]]
IncompleteHandler = Callable[[bytes, Peer], Awaitable[None]]
_TRANSPORT_ERRORS = (ConnectionError, OSError, ssl.SSLError, asyncio.IncompleteReadError)


def server_tls_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """Return a server TLS context (TLS 1.2+); with ``client_ca``, require client certificates."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"MLLP TLS: cannot load {cert}, {key}"
            f"{f' or {client_ca}' if client_ca else ''}: {exc.__class__.__name__}"
        ) from exc
    return context


def certificate_cn(peercert: object) -> str | None:
    """Return the subject commonName of a verified peer certificate (``getpeercert()``)."""
    if not isinstance(peercert, dict):
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


_RDN_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "serialNumber": "serialNumber",
}


def certificate_subject(peercert: object) -> str | None:
    """Return the subject of a verified peer certificate as RFC 4514 writes it (``CN=x,O=y``)."""
    if not isinstance(peercert, dict) or not peercert.get("subject"):
        return None
    parts = []
    for rdn in reversed(peercert["subject"]):  # RFC 4514: the most specific first
        for key, value in rdn:
            text = str(value)
            for special in ("\\", ",", "+", '"', "<", ">", ";", "="):
                text = text.replace(special, "\\" + special)
            parts.append(f"{_RDN_NAMES.get(key, key)}={text}")
    return ",".join(parts)


class MllpServer:
    """Serve MLLP: read frames, hand each to ``handle``, write its answer, in order."""

    def __init__(
        self,
        handle: FrameHandler,
        *,
        host: str,
        port: int,
        limits: Limits,
        tls: ssl.SSLContext | None = None,
        on_incomplete: IncompleteHandler | None = None,
        on_overloaded: FrameHandler | None = None,
    ) -> None:
        self.handle = handle
        self.host = host
        self.port = port
        self.limits = limits
        self.tls = tls
        self.on_incomplete = on_incomplete
        self.on_overloaded = on_overloaded or handle
        self.mutual = tls is not None and tls.verify_mode == ssl.CERT_REQUIRED
        self.budget = FrameBudget(limits.max_buffered_bytes)
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], bool] = {}  # task -> busy with a frame
        self._per_host: Tally[str] = Tally()
        self._refusals_logged_at: dict[str, float] = {}
        self.refused: Tally[str] = Tally()  # this listener's refusals, by reason
        self.connections_total = 0
        self.frames_total = 0

    @property
    def max_frame_bytes(self) -> int:
        """Return the largest frame accepted."""
        return self.limits.max_frame_bytes

    async def start(self) -> None:
        """Bind and listen; ``port`` 0 picks a free one (see :attr:`address`)."""
        # TLS is started per connection once it is admitted, so a connection
        # beyond the limits costs no handshake.
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, limit=STREAM_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        """Return ``host:port`` the server listens on."""
        return f"{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Return how many connections are open now."""
        return len(self._connections)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop listening; let frames being handled finish (their ACK goes out), close the rest."""
        if self._server is None:
            return
        self._server.close()
        for task, busy in list(self._connections.items()):
            if not busy:
                task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=grace_s)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=1.0)
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        host, port = (
            (str(peername[0]), int(peername[1])) if isinstance(peername, tuple) else ("", 0)
        )
        reason = self._refusal(host)
        if reason is not None:
            # Closed at once (an orderly close, as a full server would), before TLS:
            # a flood of connections costs a socket each for an instant, never a
            # handshake, a buffer or a task for long.
            self._refuse(reason, host)
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = False
        self._per_host[host] += 1
        self.connections_total += 1
        _OPEN.inc()
        try:
            if self.tls is not None:
                await writer.start_tls(self.tls, ssl_handshake_timeout=30)
            await self._serve(task, reader, writer, host, port)
        except asyncio.CancelledError:
            # Stopping: asyncio would report a cancelled connection task as an error.
            return
        except (*_TRANSPORT_ERRORS, TimeoutError):
            return  # a failed handshake ends this connection only
        finally:
            _OPEN.dec()
            self._connections.pop(task, None)
            self._per_host[host] -= 1
            if self._per_host[host] <= 0:
                del self._per_host[host]
            writer.close()
            with contextlib.suppress(*_TRANSPORT_ERRORS, asyncio.CancelledError):
                await writer.wait_closed()

    def _refusal(self, host: str) -> str | None:
        if len(self._connections) >= self.limits.max_connections:
            return "total"
        if self._per_host[host] >= self.limits.max_connections_per_peer:
            return "per_peer"
        return None

    def _refuse(self, reason: str, host: str) -> None:
        self.refused[reason] += 1
        _REFUSED.labels(reason).inc()
        now = time.monotonic()
        # One line per reason per interval: a flood must not flood the logs too.
        if now - self._refusals_logged_at.get(reason, -REFUSAL_LOG_INTERVAL_S) >= (
            REFUSAL_LOG_INTERVAL_S
        ):
            self._refusals_logged_at[reason] = now
            log.warning(
                "mllp connection refused: too many connections",
                extra={
                    "reason": reason,
                    "peer": host,
                    "open": len(self._connections),
                    "refused": self.refused[reason],
                },
            )

    async def _serve(
        self,
        task: asyncio.Task[None],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        port: int,
    ) -> None:
        peer = Peer(host, port)
        if self.mutual:
            peercert = writer.get_extra_info("peercert")
            peer = Peer(host, port, certificate_cn(peercert), certificate_subject(peercert))
        frames = FrameReader(
            reader,
            self.limits.max_frame_bytes,
            budget=self.budget,
            max_stray_bytes=self.limits.max_stray_bytes,
        )
        try:
            await self._serve_frames(task, frames, writer, peer)
        finally:
            frames.release()

    async def _serve_frames(
        self,
        task: asyncio.Task[None],
        frames: FrameReader,
        writer: asyncio.StreamWriter,
        peer: Peer,
    ) -> None:
        while True:
            try:
                async with asyncio.timeout(self.limits.idle_timeout_s):
                    item = await frames.read()
            except TimeoutError:
                log.info("mllp connection idle, closing", extra={"peer": peer.address})
                return
            except StrayBytesError:
                self.refused["stray_bytes"] += 1
                _DROPPED.labels("stray_bytes").inc()
                log.info(
                    "mllp connection closed: bytes outside any frame",
                    extra={"peer": peer.address, "bytes": frames.stray_bytes},
                )
                return
            except asyncio.IncompleteReadError as exc:
                if exc.partial and self.on_incomplete is not None:
                    await self.on_incomplete(exc.partial, peer)
                return
            except _TRANSPORT_ERRORS:
                return
            if item is None:
                return
            self._connections[task] = True
            self.frames_total += 1
            try:
                if item.overloaded:
                    self.refused["overloaded"] += 1
                    _OVERLOADED.inc()
                    answer = await self.on_overloaded(item, peer)
                else:
                    answer = await self.handle(item, peer)
                del item
                frames.release()  # answered: its bytes are no longer held
                if answer:
                    writer.write(frame(answer))
                    await writer.drain()
            except _TRANSPORT_ERRORS:
                return
            finally:
                self._connections[task] = False
            if frames.stray_bytes:
                log.info(
                    "bytes outside MLLP frames ignored",
                    extra={"peer": peer.address, "bytes": frames.stray_bytes},
                )
                frames.stray_bytes = 0


def describe_error(exc: BaseException) -> str:
    """Return what went wrong on a connection in a few words (no peer data, no traceback)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "closed inside a frame"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return exc.__class__.__name__


class MllpClient:
    """One MLLP connection that sends a message and awaits its answer (one in flight)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float | None = None,
        max_frame_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s or timeout_s
        self.max_frame_bytes = max_frame_bytes
        self._reader: FrameReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def connected(self) -> bool:
        """Tell whether a connection is open (a failed send closes it)."""
        return self._writer is not None

    async def connect(self) -> None:
        """Open the connection; raise TransientError when the peer cannot be reached."""
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.tls, limit=256 * 1024
                )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            raise TransientError(
                f"cannot connect to {self.host}:{self.port}: {describe_error(exc)}"
            ) from exc
        self._reader = FrameReader(reader, self.max_frame_bytes)
        self._writer = writer

    async def send(self, message: bytes, *, expect_answer: bool = True) -> bytes | None:
        """Send one message; return the answer frame's bytes (None if none is expected).

        A timeout closes the connection (a late answer would be read as the
        next message's) and raises DeliveryTimeoutError; it covers the write
        too, so a peer that stops reading cannot hold the sender.
        """
        if self._writer is None or self._reader is None:
            await self.connect()
        assert self._writer is not None
        assert self._reader is not None
        try:
            async with asyncio.timeout(self.timeout_s):
                self._writer.write(frame(message))
                await self._writer.drain()
                if not expect_answer:
                    return None
                answer = await self._reader.read()
        except TimeoutError as exc:
            await self.close()
            raise DeliveryTimeoutError(
                f"no answer from {self.host}:{self.port} within {self.timeout_s:g} s"
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            await self.close()
            raise TransientError(
                f"connection to {self.host}:{self.port} lost: {describe_error(exc)}"
            ) from exc
        if answer is None:
            await self.close()
            raise TransientError(f"{self.host}:{self.port} closed the connection before answering")
        return answer.data

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(*_TRANSPORT_ERRORS):
                await writer.wait_closed()

    async def __aenter__(self) -> MllpClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
