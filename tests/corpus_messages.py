"""Every HL7 v2 message of the corpus and tests/data that reads as one (batches split)."""

from __future__ import annotations

from adapters.hl7v2 import charset as charsets
from adapters.hl7v2.er7 import Message
from broker.errors import MessageError
from tests.conftest import CORPUS, REPO


def corpus_messages() -> list[tuple[str, Message]]:
    """Return ``(name, message)`` for every v2 message of the corpus and tests/data."""
    found = []
    paths = sorted(CORPUS.rglob("*.hl7")) + sorted((REPO / "tests" / "data").glob("*.hl7"))
    for path in paths:
        try:
            text = charsets.decode(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))[0]
        except MessageError:
            continue  # a mislabelled-charset sample, for the ingress tests
        lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
        chunks: list[list[str]] = []
        for line in lines:
            if line.startswith("MSH"):
                chunks.append([line])
            elif chunks and line[:3].isalnum() and line[:3].isupper():
                chunks[-1].append(line)
        for index, chunk in enumerate(chunks, 1):
            try:
                message = Message("\r".join(chunk) + "\r")
                if "^" not in message.message_type:
                    continue  # a malformed-MSH sample, for the ingress tests
            except MessageError:
                continue
            name = path.name if len(chunks) == 1 else f"{path.name}#{index}"
            found.append((name, message))
    return found
