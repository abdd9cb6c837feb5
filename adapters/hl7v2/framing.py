"""MLLP framing (HL7 v2.5.1 Appendix C): ``<VT> message <FS><CR>``.

A receiver must handle frames split across TCP reads and several frames in
one read. :class:`FrameReader` reads whole frames from an asyncio stream with
a size limit: a frame larger than the limit is not buffered whole; its first
bytes are kept (for the operator's record) and the rest is skipped up to the
end marker, so the connection stays usable.

Bytes outside a frame (before a start block) are skipped, as every MLLP
implementation does, a buffer at a time; they are counted so the server can
report them, and past ``max_stray_bytes`` in a row the reader gives up
(:class:`StrayBytesError`): a stream of junk is not worth a connection.

Memory: a frame's first ``FREE_BYTES`` are always kept; beyond them the kept
bytes are drawn from a :class:`FrameBudget` that all of a listener's
connections share. A frame the budget cannot cover is read to its end without
being kept (its first ``HEADER_BYTES`` stay, for the answer) and handed over
``overloaded``, so a few unfinished large frames cannot hold the memory of
the process, and the sender is told to resend later.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from broker.errors import MessageError

START: Final = b"\x0b"
END: Final = b"\x1c\x0d"
_END_BLOCK: Final = b"\x1c"
FREE_BYTES: Final = 64 * 1024  # of each frame, kept without drawing on the budget
HEADER_BYTES: Final = 4096  # of an overloaded frame, kept to read its MSH and answer it


class StrayBytesError(MessageError):
    """More bytes outside any frame than the reader accepts in a row: not an MLLP peer."""


class FrameBudget:
    """Bytes of frames in progress that every connection of a listener may hold together.

    Counts only what frames keep beyond their first ``FREE_BYTES``; a frame
    gives its share back once it has been answered.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.peak = 0

    def take(self, size: int) -> bool:
        """Reserve ``size`` bytes; False (nothing reserved) when that would pass the limit."""
        if self.held + size > self.limit:
            return False
        self.held += size
        self.peak = max(self.peak, self.held)
        return True

    def give_back(self, size: int) -> None:
        """Return bytes reserved earlier."""
        self.held -= size


def frame(payload: bytes) -> bytes:
    """Wrap one message in MLLP start and end blocks."""
    return START + payload + END


@dataclass(frozen=True)
class Frame:
    """One frame read from a stream.

    ``oversize`` frames carry only their first ``keep`` bytes in ``data`` and
    their full length in ``size``; ``overloaded`` ones (the shared budget was
    spent) their first ``HEADER_BYTES``.
    """

    data: bytes
    size: int
    oversize: bool = False
    overloaded: bool = False


class FrameReader:
    """Read MLLP frames from an asyncio stream, one at a time."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        max_bytes: int,
        keep: int = 1024 * 1024,
        *,
        budget: FrameBudget | None = None,
        max_stray_bytes: int | None = None,
    ) -> None:
        self.reader = reader
        self.max_bytes = max_bytes
        self.keep = min(keep, max_bytes)
        self.budget = budget
        self.max_stray_bytes = max_stray_bytes
        self.stray_bytes = 0  # since the server last reported them
        self._stray_run = 0  # since the last start block
        self._held = 0  # bytes of the budget this reader holds
        self._started = False  # a start block was already consumed (FS VT without CR)
        self._tail = b""  # bytes read before the stream ended inside a frame

    async def read(self) -> Frame | None:
        """Return the next frame, or None at a clean end of stream.

        Raises ``asyncio.IncompleteReadError`` when the stream ends inside a
        frame, :class:`StrayBytesError` past ``max_stray_bytes`` outside one.
        The previous frame's share of the budget is given back first (call
        :meth:`release` earlier once it has been answered).
        """
        self.release()
        if not await self._skip_to_start():
            return None
        kept = bytearray()
        size = 0
        oversize = overloaded = False
        while True:
            piece, at_end_block = await self._next_piece()
            if piece is None:
                # Hand over what the peer sent before closing: it is kept as refused.
                tail = self._tail[: max(self.keep - len(kept), 0)]
                if oversize or overloaded or not self._hold(len(kept) + len(tail)):
                    tail = b""
                raise asyncio.IncompleteReadError(bytes(kept) + tail, None)
            size += len(piece)
            if not (oversize or overloaded):
                kept, oversize, overloaded = self._add(kept, piece, size)
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
            if not (oversize or overloaded):
                kept, oversize, overloaded = self._add(kept, _END_BLOCK + following, size)
        return Frame(bytes(kept), size, oversize=oversize, overloaded=overloaded)

    def release(self) -> None:
        """Give back the budget the last frame held (it has been answered)."""
        self._hold(0)

    def _add(self, kept: bytearray, piece: bytes, size: int) -> tuple[bytearray, bool, bool]:
        """Keep ``piece`` as far as the frame limit and the budget allow.

        Return the kept bytes and whether the frame is now oversize or overloaded.
        """
        oversize = size > self.max_bytes
        if oversize:
            # Only the first bytes of an oversize frame are kept, for the operator's record.
            kept += piece[: max(self.keep - len(kept), 0)]
        else:
            kept += piece
        if self._hold(len(kept)):
            return kept, oversize, False
        del kept[HEADER_BYTES:]
        self._hold(len(kept))
        return kept, oversize, not oversize

    def _hold(self, length: int) -> bool:
        """Make this reader's share of the budget cover ``length`` kept bytes, if it can."""
        wanted = max(length - FREE_BYTES, 0)
        if self.budget is None or wanted == self._held:
            return True
        if wanted < self._held:
            self.budget.give_back(self._held - wanted)
        elif not self.budget.take(wanted - self._held):
            return False
        self._held = wanted
        return True

    async def _skip_to_start(self) -> bool:
        if self._started:
            self._started = False
            self._stray_run = 0
            return True
        while True:
            try:
                skipped = await self.reader.readuntil(START)
            except asyncio.IncompleteReadError as exc:
                self._stray(len(exc.partial))
                return False
            except asyncio.LimitOverrunError as exc:
                # No start block in the whole buffer: drop it, a buffer at a time.
                self._stray(len(await self.reader.readexactly(max(exc.consumed, 1))))
                continue
            self._stray(len(skipped) - 1)
            self._stray_run = 0
            return True

    def _stray(self, count: int) -> None:
        self.stray_bytes += count
        self._stray_run += count
        if self.max_stray_bytes is not None and self._stray_run > self.max_stray_bytes:
            raise StrayBytesError(
                f"{self._stray_run} bytes outside any MLLP frame (limit {self.max_stray_bytes})"
            )

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
