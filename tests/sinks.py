"""Partner systems for the tests: a real MLLP receiver and a real FHIR HTTP receiver.

Both behave as well-run partner systems do (domain-requirements §1.4, §1.8):
they recognise a resend of a message they already processed (same MSH-10,
same Bundle.identifier), answer it positively again and do not process it a
second time. Each records what it received and what it processed, so a test
can tell "delivered twice" from "resent after a crash and recognised".

Both can be told to answer otherwise (AE/AR, an HTTP status) and can be taken
down and brought back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response

from adapters.hl7v2.er7 import Message
from adapters.hl7v2.framing import FrameReader, frame
from broker.http import HttpServer, bind


@dataclass
class Received:
    """One message as a partner saw it."""

    control_id: str
    patient: str
    receiving_facility: str
    text: str = field(repr=False)


class MllpSink:
    """An MLLP receiver answering ACKs (AA unless told otherwise for a control id)."""

    def __init__(self, name: str = "sink") -> None:
        self.name = name
        self.port = 0
        self.received: list[Received] = []
        self.processed: list[Received] = []
        self.answers: dict[str, str] = {}
        self.resent: list[str] = []  # control ids received again after being processed
        self._seen: set[str] = set()
        self.delay_s = 0.0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def processed_ids(self) -> list[str]:
        """Return the control ids processed, in order."""
        return [r.control_id for r in self.processed]

    async def start(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Go down: stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    def _answer_for(self, control_id: str) -> str:
        return self.answers.get(control_id, "AA")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        frames = FrameReader(reader, 16 * 1024 * 1024)
        try:
            while True:
                got = await frames.read()
                if got is None:
                    return
                text = got.data.decode("utf-8", errors="replace")
                message = Message(text)
                pid = message.segment("PID")
                item = Received(
                    message.control_id,
                    pid.get(3, 1, 1) if pid else "",
                    message.receiving_facility,
                    text,
                )
                self.received.append(item)
                code = self._answer_for(item.control_id)
                if code == "AA":
                    if item.control_id in self._seen:
                        self.resent.append(item.control_id)
                    else:
                        self._seen.add(item.control_id)
                        self.processed.append(item)
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(frame(_ack(message, code)))
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()


def _ack(message: Message, code: str) -> bytes:
    msh = message.msh
    err = "ERR||PID^1^5|101^Required field missing^HL70357|E\r" if code == "AE" else ""
    return (
        f"MSH|^~\\&|{msh.get(5)}|{msh.get(6)}|{msh.get(3)}|{msh.get(4)}|20261128120000||"
        f"ACK^{msh.get(9, comp=2)}^ACK|ACK-{message.control_id}|P|2.5\r"
        f"MSA|{code}|{message.control_id}\r{err}"
    ).encode()


class FhirSink:
    """A FHIR server's ``$process-message``: records Bundles, recognises resends."""

    def __init__(self) -> None:
        self.bundles: list[dict[str, Any]] = []
        self.processed: list[str] = []
        self.status = 200
        self._server: HttpServer | None = None
        self.port = 0
        app = FastAPI()

        @app.post("/fhir/$process-message")
        async def process(request: Request) -> Response:
            bundle = json.loads(await request.body())
            self.bundles.append(bundle)
            if self.status != 200:
                outcome = {"resourceType": "OperationOutcome", "issue": [{"code": "invalid"}]}
                return Response(json.dumps(outcome), self.status, media_type="application/json")
            identifier = bundle["identifier"]["value"]
            if identifier not in self.processed:
                self.processed.append(identifier)
            return Response(
                json.dumps(
                    {
                        "resourceType": "Bundle",
                        "type": "message",
                        "entry": [
                            {
                                "resource": {
                                    "resourceType": "MessageHeader",
                                    "response": {"identifier": identifier, "code": "ok"},
                                }
                            }
                        ],
                    }
                ),
                200,
                media_type="application/fhir+json",
            )

        self.app = app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    async def start(self) -> None:
        sock = bind("127.0.0.1", self.port)
        self._server = HttpServer(self.app, sock)
        await self._server.start()
        self.port = self._server.port

    async def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.stop()
            self._server = None


@contextlib.asynccontextmanager
async def partner_sinks() -> AsyncIterator[tuple[MllpSink, MllpSink, FhirSink]]:
    """Run the example directory's partners: chu-montpellier and cabinet-dupont (MLLP),
    maison-sante-nord (FHIR); stop them afterwards."""
    sinks = (MllpSink("chu"), MllpSink("dupont"), FhirSink())
    for sink in sinks:
        await sink.start()
    try:
        yield sinks
    finally:
        for sink in sinks:
            await sink.stop()
