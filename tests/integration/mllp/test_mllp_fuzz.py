"""Random bytes and mutated corpus messages never crash the listener.

Every input gets an answer or a clean close, and the listener answers the
next message normally. The listener runs in its own thread and event loop so
that hypothesis can drive it with plain blocking sockets.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import hl7
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters.hl7v2.framing import END, START, frame
from adapters.hl7v2.ingress import Ingress
from adapters.hl7v2.mllp import Limits, MllpServer
from broker.pseudonym import Pseudonymizer
from broker.store import db
from broker.store.messages import MessageStore
from tests.conftest import REPO
from tests.fuzz.conftest import public_seeds
from tests.integration.mllp.conftest import directory

PROBE = (REPO / "tests" / "data" / "oru_labo_sud.hl7").read_bytes().replace(b"\n", b"\r")
SEEDS = public_seeds()
ANSWER_CODES = {"AA", "AE", "AR", "CA", "CE", "CR"}


class ThreadedListener:
    """The real listener and ingress on the real store, in a thread of their own."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.pool = await db.connect(self.database_url, 3)
        self.ingress = Ingress(MessageStore(self.pool), directory(), Pseudonymizer(b"f" * 32))
        self.ingress.start()
        self.server = MllpServer(
            self.ingress.handle,
            host="127.0.0.1",
            port=0,
            limits=Limits(64 * 1024, 30),
            on_incomplete=self.ingress.incomplete,
        )
        await self.server.start()
        self.port = self.server.port

    async def _stop(self) -> None:
        await self.server.stop(grace_s=2)
        await self.ingress.stop()
        await self.pool.close()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def threaded(database_url: str) -> Iterator[ThreadedListener]:
    listener = ThreadedListener(database_url)
    listener.thread.start()
    assert listener.ready.wait(30)
    yield listener
    listener.stop()


def read_frames_until_eof(sock: socket.socket) -> list[bytes]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return [part.lstrip(START) for part in data.split(END) if part.strip(START)]


def msa_of(block: bytes) -> list[tuple[str, str]]:
    """Return (MSA-1, MSA-2) of every MSA segment in an answer (an ACK or an ACK batch)."""
    found = []
    for segment in block.decode("latin-1").split("\r"):
        if segment.startswith("MSA") and len(segment) > 3:
            fields = [*segment.split(segment[3]), "", ""]
            found.append((fields[1], fields[2]))
    return found


def read_until_probe(sock: socket.socket, control_id: str) -> list[bytes]:
    """Read answer frames until the probe's own answer; return them all."""
    buffer = b""
    answers = []
    while True:
        while END not in buffer:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the probe was answered"
            buffer += chunk
        block, buffer = buffer.split(END, 1)
        answers.append(block.lstrip(START))
        if msa_of(answers[-1])[-1:] and msa_of(answers[-1])[-1][1] == control_id:
            return answers


def probe(port: int, control_id: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(frame(PROBE.replace(b"LS-0001", control_id.encode())))
        (answer,) = read_until_probe(sock, control_id)
        assert msa_of(answer) == [("AA", control_id)]


fuzz = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@fuzz
@given(data=st.binary(max_size=2000) | st.binary(max_size=200).map(lambda b: START + b))
def test_random_bytes_get_answers_or_a_clean_close(threaded: ThreadedListener, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", threaded.port), timeout=20) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        for block in read_frames_until_eof(sock):  # then the server closed: cleanly
            assert msa_of(block)
            assert {code for code, _ in msa_of(block)} <= ANSWER_CODES
    probe(threaded.port, "PROBE-R")


def _mutate(seed: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(seed)
    for position, delete, insert in edits:
        at = position % (len(data) + 1)
        data[at : at + delete] = insert
    # Framing bytes inside a message would end the frame: that is the other test.
    return bytes(data).replace(START, b"").replace(b"\x1c", b"")


edits = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.integers(0, 8),
        st.binary(max_size=6)
        | st.sampled_from([b"|", b"^", b"~", b"\\", b"&", b"\r", b"MSH|", b'""']),
    ),
    min_size=1,
    max_size=8,
)


@fuzz
@given(seed=st.sampled_from(SEEDS), edits=edits)
# Found by this test: a broken BHS, its batch, then a stray MSH after BTS. Two
# batches answer as one file (FHS ... FTS), else the answer is not HL7 v2.
@example(
    seed=next(s for s in SEEDS if s.startswith(b"BHS|") and s.count(b"\rMSH|") == 2),
    edits=[(3, 1, b""), (3, 3, b"\x00" * 5), (1898, 0, b"MSH")],
)
# Found by this test: a group separator (0x1D) in BHS-11 was echoed raw in the
# answer's BHS-12, and python-hl7 (like str.splitlines) breaks a line there.
@example(seed=next(s for s in SEEDS if s.startswith(b"FHS|")), edits=[(741, 0, b"\x1d")])
def test_mutated_corpus_messages_get_an_answer_and_the_next_message_is_answered(
    threaded: ThreadedListener, seed: bytes, edits: list[tuple[int, int, bytes]]
) -> None:
    mutated = _mutate(seed.replace(b"|GHH LAB|", b"|LABO-SUD|"), edits)
    with socket.create_connection(("127.0.0.1", threaded.port), timeout=20) as sock:
        sock.sendall(frame(mutated) + frame(PROBE.replace(b"LS-0001", b"PROBE-M")))
        answers = read_until_probe(sock, "PROBE-M")
    assert len(answers) <= 2  # at most one answer for the mutated frame (none if NE/ER)
    for answer in answers:
        hl7.parse_hl7(answer.decode("latin-1"))  # python-hl7 reads every answer
        assert {code for code, _ in msa_of(answer)} <= ANSWER_CODES
