"""Deliver HL7 v2 over MLLP: persistent connections, one message in flight each, ACK timeout.

Each connection is an :class:`adapters.hl7v2.mllp.MllpClient` (carebroker's
one MLLP client): it sends one frame and waits for its ACK before the next
(HL7 v2.5.1 Appendix C; the "one ordered stream per connection" practice of
domain-requirements §1.1). Up to ``connections`` of them per endpoint.

The ACK decides (HL7 v2.5.1 §2.9, table 0008), read by
:func:`adapters.hl7v2.ack.read_answer`:

- ``AA``/``CA`` → delivered;
- ``AE``/``CE`` → failed for good: the message needs correction; the ACK,
  with its ERR segment, is kept;
- ``AR``/``CR``, no ACK within ``ack_timeout_s``, an ACK whose MSA-2 does not
  echo our MSH-10, or a broken connection → retry. The connection is closed
  after a timeout or a mismatch, so a late ACK can never be read as the
  answer to the next message.

An application ACK carebroker owes a sender (``routing/app_ack.py``) is an
acknowledgement, and acknowledgements are never acknowledged: it goes out on
a connection of its own, which is closed once the frame is written, so that
an answer the sender might still give can never be read as the ACK of a
message on the shared connections.
"""

from __future__ import annotations

import contextlib
import ssl

from adapters.hl7v2 import charset
from adapters.hl7v2.ack import read_answer
from adapters.hl7v2.er7 import Message
from adapters.hl7v2.mllp import MllpClient
from broker.directory import MllpEndpoint
from broker.errors import DeliveryTimeoutError, MessageError, TransientError
from routing.transports import Outcome, Outgoing

MAX_ACK_BYTES = 1024 * 1024
CONNECT_TIMEOUT_S = 10.0


class MllpTransport:
    """Send to one MLLP endpoint over up to ``connections`` persistent connections."""

    def __init__(self, recipient: str, endpoint: MllpEndpoint) -> None:
        self.recipient = recipient
        self.endpoint = endpoint
        self.concurrency = endpoint.connections
        self._tls = ssl.create_default_context() if endpoint.tls else None
        self._idle: list[MllpClient] = []
        self._open: set[MllpClient] = set()

    def _client(self) -> MllpClient:
        return MllpClient(
            self.endpoint.host,
            self.endpoint.port,
            tls=self._tls,
            timeout_s=self.endpoint.ack_timeout_s,
            connect_timeout_s=min(self.endpoint.ack_timeout_s, CONNECT_TIMEOUT_S),
            max_frame_bytes=MAX_ACK_BYTES,
        )

    async def send(self, item: Outgoing) -> Outcome:
        """Send one message and read its ACK; any failure becomes an Outcome."""
        if not item.expect_answer:
            return await self._send_unanswered(item)
        client = self._idle.pop() if self._idle else self._client()
        self._open.add(client)
        try:
            if not client.connected:
                await client.connect()
        except TransientError as exc:
            self._open.discard(client)
            return Outcome("retry", "no-connection", str(exc))
        try:
            answer = await client.send(item.payload)
        except DeliveryTimeoutError as exc:  # the client closed itself
            self._open.discard(client)
            return Outcome("retry", "timeout", str(exc))
        except TransientError as exc:
            self._open.discard(client)
            return Outcome("retry", "connection-lost", str(exc))
        outcome = read_ack(answer or b"", item.control_id)
        if outcome.ack_code in ("mismatch", "not-an-ack"):
            await self._discard(client)
        else:
            self._idle.append(client)
        return outcome

    async def _send_unanswered(self, item: Outgoing) -> Outcome:
        """Write an acknowledgement on a connection of its own, then close it."""
        client = self._client()
        self._open.add(client)
        try:
            await client.send(item.payload, expect_answer=False)
        except TransientError as exc:
            return Outcome("retry", "no-connection", str(exc))
        finally:
            await self._discard(client)
        return Outcome("delivered", "sent")

    async def close(self) -> None:
        """Close every connection."""
        for client in list(self._open):
            await self._discard(client)

    async def _discard(self, client: MllpClient) -> None:
        self._open.discard(client)
        with contextlib.suppress(ValueError):
            self._idle.remove(client)
        await client.close()


def read_ack(data: bytes, control_id: str) -> Outcome:
    """Turn an ACK's MSA (and ERR) into an Outcome; keep the ACK bytes as the response."""
    try:
        text, _ = charset.decode(data)
    except MessageError:
        text = data.decode("latin-1")
    try:
        answer = read_answer(Message(text))
    except MessageError:
        return Outcome("retry", "not-an-ack", "the answer is not an HL7 v2 ACK", data)
    code = answer.code
    if answer.control_id != control_id:
        return Outcome("retry", "mismatch", "the ACK's MSA-2 does not echo MSH-10", data)
    if code in ("AA", "CA"):
        return Outcome("delivered", code, None, data)
    if code in ("AE", "CE"):
        return Outcome("failed", code, f"{code}: {answer.describe()}", data)
    if code in ("AR", "CR"):
        return Outcome("retry", code, f"{code}: {answer.describe()}", data)
    return Outcome("retry", "not-an-ack", "MSA-1 is not a table 0008 code", data)
