"""MLLP framing (HL7 v2.5.1 Appendix C): ``<VT> message <FS><CR>``.

A receiver must handle frames split across TCP reads and several frames in
one read. :class:`FrameReader` reads whole frames from an asyncio stream with
a size limit: a frame larger than the limit is not buffered whole; its first
bytes are kept (for the operator's record) and the rest is skipped up to the
end marker, so the connection stays usable.

Bytes outside a frame (before a start block) are ignored, as every MLLP
implementation does; they are counted so the server can report them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

START: Final = b"\x0b"
END: Final = b"\x1c\x0d"
_END_BLOCK: Final = b"\x1c"


def frame(payload: bytes) -> bytes:
    """Wrap one message in MLLP start and end blocks."""
    return START + payload + END


@dataclass(frozen=True)
class Frame:
    """One frame read from a stream.

    ``oversize`` frames carry only their first ``keep`` bytes in ``data`` and
    their full length in ``size``.
    """

    data: bytes
    size: int
    oversize: bool = False


class FrameReader:
    """Read MLLP frames from an asyncio stream, one at a time."""

    def __init__(
        self, reader: asyncio.StreamReader, max_bytes: int, keep: int = 1024 * 1024
    ) -> None:
        self.reader = reader
        self.max_bytes = max_bytes
        self.keep = min(keep, max_bytes)
        self.stray_bytes = 0
        self._started = False  # a start block was already consumed (FS VT without CR)
        self._tail = b""  # bytes read before the stream ended inside a frame

    async def read(self) -> Frame | None:
        """Return the next frame, or None at a clean end of stream.

        Raises ``asyncio.IncompleteReadError`` when the stream ends inside a frame.
        """
        if not await self._skip_to_start():
            return None
        kept = bytearray()
        size = 0
        oversize = False
        while True:
            piece, at_end_block = await self._next_piece()
            if piece is None:
                # Hand over what the peer sent before closing: it is kept as refused.
                tail = b"" if oversize else self._tail[: max(self.keep - len(kept), 0)]
                raise asyncio.IncompleteReadError(bytes(kept) + tail, None)
            size += len(piece)
            if not oversize:
                kept += piece
                if size > self.max_bytes:
                    oversize = True
                    del kept[self.keep :]
            if not at_end_block:
                continue
            following = await self.reader.read(1)
            if following == b"\r":
                break
            if following == START:  # sloppy sender: FS without CR, next frame begins
                self._started = True
                break
            if not following:
                raise asyncio.IncompleteReadError(bytes(kept), None)
            # An FS not followed by CR is data.
            size += 2
            if not oversize:
                kept += _END_BLOCK + following
        return Frame(bytes(kept), size, oversize=oversize)

    async def _skip_to_start(self) -> bool:
        if self._started:
            self._started = False
            return True
        while True:
            byte = await self.reader.read(1)
            if not byte:
                return False
            if byte == START:
                return True
            self.stray_bytes += 1

    async def _next_piece(self) -> tuple[bytes | None, bool]:
        """Return (bytes before the next FS, True), or a buffered piece (.., False)."""
        try:
            data = await self.reader.readuntil(_END_BLOCK)
        except asyncio.IncompleteReadError as exc:
            self._tail = exc.partial
            return None, False
        except asyncio.LimitOverrunError as exc:
            # Longer than the stream buffer: hand over what is buffered; the
            # caller keeps or skips it, so an oversize frame is never held whole.
            return await self.reader.readexactly(max(exc.consumed, 1)), False
        return data[:-1], True
