"""Deliver HL7 v2 over MLLP: persistent connections, one message in flight each, ACK timeout.

A minimal MLLP client over ``adapters/hl7v2/framing.py``; the full client
(``adapters/hl7v2/mllp.py``) replaces it once merged. Each connection sends
one frame and waits for its ACK before the next (HL7 v2.5.1 Appendix C; the
"one ordered stream per connection" practice of domain-requirements §1.1).

The ACK decides (HL7 v2.5.1 §2.9, table 0008):

- ``AA``/``CA`` → delivered;
- ``AE``/``CE`` → failed for good: the message needs correction; the ACK,
  with its ERR segment, is kept;
- ``AR``/``CR``, no ACK within ``ack_timeout_s``, an ACK whose MSA-2 does not
  echo our MSH-10, or a broken connection → retry. The connection is closed
  after a timeout or a mismatch, so a late ACK can never be read as the
  answer to the next message.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from adapters.hl7v2 import charset
from adapters.hl7v2.er7 import Message
from adapters.hl7v2.framing import FrameReader, frame
from broker.errors import MessageError
from routing.directory import MllpEndpoint
from routing.transports import Outcome, Outgoing

MAX_ACK_BYTES = 1024 * 1024


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.frames = FrameReader(reader, MAX_ACK_BYTES)
        self.writer = writer

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await self.writer.wait_closed()


class MllpTransport:
    """Send to one MLLP endpoint over up to ``connections`` persistent connections."""

    def __init__(self, recipient: str, endpoint: MllpEndpoint) -> None:
        self.recipient = recipient
        self.endpoint = endpoint
        self.concurrency = endpoint.connections
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    async def send(self, item: Outgoing) -> Outcome:
        """Send one message and read its ACK; any failure becomes an Outcome."""
        try:
            connection = await self._acquire()
        except (OSError, TimeoutError) as exc:
            return Outcome("retry", "no-connection", f"cannot connect: {_reason(exc)}")
        try:
            async with asyncio.timeout(self.endpoint.ack_timeout_s):
                connection.writer.write(frame(item.payload))
                await connection.writer.drain()
                answer = await connection.frames.read()
        except TimeoutError:
            await self._discard(connection)
            return Outcome("retry", "timeout", f"no ACK within {self.endpoint.ack_timeout_s:g} s")
        except (OSError, asyncio.IncompleteReadError) as exc:
            await self._discard(connection)
            return Outcome("retry", "connection-lost", f"connection lost: {_reason(exc)}")
        if answer is None:
            await self._discard(connection)
            return Outcome("retry", "connection-lost", "connection closed before the ACK")
        outcome = read_ack(answer.data, item.control_id)
        if outcome.ack_code in ("mismatch", "not-an-ack"):
            await self._discard(connection)
        else:
            self._idle.append(connection)
        return outcome

    async def close(self) -> None:
        """Close every connection."""
        for connection in list(self._open):
            await self._discard(connection)

    async def _acquire(self) -> _Connection:
        if self._idle:
            return self._idle.pop()
        context = ssl.create_default_context() if self.endpoint.tls else None
        async with asyncio.timeout(min(self.endpoint.ack_timeout_s, 10.0)):
            reader, writer = await asyncio.open_connection(
                self.endpoint.host, self.endpoint.port, ssl=context, limit=MAX_ACK_BYTES
            )
        connection = _Connection(reader, writer)
        self._open.add(connection)
        return connection

    async def _discard(self, connection: _Connection) -> None:
        self._open.discard(connection)
        with contextlib.suppress(ValueError):
            self._idle.remove(connection)
        await connection.close()


def read_ack(data: bytes, control_id: str) -> Outcome:
    """Turn an ACK's MSA (and ERR) into an Outcome; keep the ACK bytes as the response.

    ERR is read in both its v2.5 form (ERR-2 location, ERR-3 code) and its
    v2.3.1 form (ERR-1: segment^sequence^field^code).
    """
    try:
        text, _ = charset.decode(data)
    except MessageError:
        text = data.decode("latin-1")
    try:
        message = Message(text)
    except MessageError:
        return Outcome("retry", "not-an-ack", "the answer is not an HL7 v2 message", data)
    msa = message.segment("MSA")
    if msa is None:
        return Outcome("retry", "not-an-ack", "the answer has no MSA segment", data)
    code = msa.get(1).upper()
    if msa.get(2) != control_id:
        return Outcome("retry", "mismatch", "the ACK's MSA-2 does not echo MSH-10", data)
    if code in ("AA", "CA"):
        return Outcome("delivered", code, None, data)
    if code in ("AE", "CE"):
        return Outcome("failed", code, f"{code}: {describe_err(message)}", data)
    if code in ("AR", "CR"):
        return Outcome("retry", code, f"{code}: {describe_err(message)}", data)
    return Outcome("retry", "not-an-ack", "MSA-1 is not a table 0008 code", data)


def describe_err(message: Message) -> str:
    """Return the ERR codes and locations of an ACK (codes only: ERR-8 texts may quote data)."""
    parts = []
    for err in message.all("ERR"):
        code = err.get(3, comp=1)
        location = "-".join(p for p in (err.get(2, comp=1), err.get(2, comp=3)) if p)
        if not code and err.field(1):  # HL7 v2.3.1 ERR-1 (ELD)
            code = err.get(1, comp=4, sub=1)
            location = "-".join(p for p in (err.get(1, comp=1), err.get(1, comp=3)) if p)
        if code or location:
            parts.append(f"ERR {code or '?'}" + (f" at {location}" if location else ""))
    return "; ".join(parts) or "no ERR segment"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return exc.__class__.__name__
