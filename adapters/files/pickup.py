"""Durable pickup of files dropped in a watched directory: commit first, move after.

A lab (or the transfer tool in front of it) drops HPRIM Santé result files in
the directory; each scan takes the files that are complete, stores the
messages they hold, then moves them. When is a file complete? All of:

1. its name is not a temporary one: names starting with ``.`` or ending with
   ``.tmp`` or ``.part`` are never read, so a writer that writes under such a
   name and renames when done (the safe convention: a rename is atomic) is
   never seen half-way;
2. its size and modification time stayed unchanged across two scans at least
   ``settle_s`` apart, and again while it was read;
3. it ends with its ``L`` (end) record, which the format puts last: a file cut
   short by a crash, a full disk or a broken transfer lacks it. Such a file is
   left alone while it may still grow, then, unchanged for
   ``incomplete_after_s``, refused as truncated.

Then, for each file, in this order (design invariant 1):

1. read it into one ORU^R01 per patient (``adapters/hprim/intake.py``) and
   store them in one transaction with ``MessageStore.accept`` — or, refused,
   keep it with the reason (file, record, field) through ``MessageStore.reject``;
2. record the file (``file_pickups``: digest, outcome, messages);
3. move it to ``done/`` (or ``error/`` with ``<name>.reason.txt`` beside it).

A crash (SIGKILL) anywhere leaves the file in the directory: the next scan
reads it again and, since its messages' control ids derive from its SHA-256,
the store answers "duplicate" and nothing is routed twice; a refusal already
kept is found by its control id and not kept twice. Only one instance scans a
directory at a time (a PostgreSQL advisory lock), so scaling the role out
gives a standby, not a race. File names can carry patient names: they are
kept in the store and the ``.reason.txt``, never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from adapters.hprim import intake, records
from adapters.hprim.records import HprimError
from broker import telemetry
from broker.directory import Directory
from broker.errors import StartupError, StoreUnavailableError
from broker.ids import new_id_at
from broker.pseudonym import Pseudonymizer
from broker.store.files import FilePickup, FileStore
from broker.store.messages import Accepted, MessageStore, Rejected

log = logging.getLogger(__name__)

ACTOR = "files"
TEMPORARY_SUFFIXES = (".tmp", ".part")


@dataclass(frozen=True)
class _Look:
    """A file read once it stayed unchanged: its bytes, digest, and whether it is complete."""

    data: bytes
    digest: str
    complete: bool
    unchanged_s: float
    error: HprimError | None = None


@dataclass(frozen=True)
class _Seen:
    """A file's size and time when first seen so, and the clock reading then."""

    size: int
    mtime_ns: int
    since: float


class FileIntake:
    """Scan one drop directory; take complete files into the store; move them after commit."""

    def __init__(
        self,
        inbox: Path,
        *,
        messages: MessageStore,
        files: FileStore,
        directory: Callable[[], Directory],
        pseudonymizer: Pseudonymizer,
        settle_s: float = 1.0,
        incomplete_after_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inbox = inbox
        self.done = inbox / "done"
        self.error = inbox / "error"
        self.messages = messages
        self.files = files
        self.directory = directory
        self.pseudonymizer = pseudonymizer
        self.settle_s = settle_s
        self.incomplete_after_s = incomplete_after_s
        self.clock = clock
        self.scans = 0
        self.stats: Counter[str] = Counter()  # accepted, duplicate, refused
        self._seen: dict[str, _Seen] = {}
        self._stuck: dict[str, str] = {}  # name -> digest of a file that could not be moved

    def prepare(self) -> None:
        """Create done/ and error/; raise StartupError when the directory cannot be used."""
        try:
            if not self.inbox.is_dir():
                raise StartupError(f"file intake: {self.inbox} is not a directory")
            for folder in (self.done, self.error):
                folder.mkdir(exist_ok=True)
                if not os.access(folder, os.W_OK | os.X_OK):
                    raise StartupError(f"file intake: {folder} is not writable")
            if not os.access(self.inbox, os.R_OK | os.W_OK | os.X_OK):
                raise StartupError(f"file intake: {self.inbox} is not readable and writable")
        except OSError as exc:
            raise StartupError(
                f"file intake: {self.inbox} cannot be used ({exc.strerror or 'error'})"
            ) from exc

    async def scan(self, stop: asyncio.Event | None = None) -> int:
        """Take every file that is complete; return how many were taken (moved)."""
        taken = 0
        async with self.files.scanning(str(self.inbox)) as held:
            if not held:  # another instance scans this directory
                return 0
            now = self.clock()
            present = await asyncio.to_thread(self._candidates)
            for name in set(self._seen) - {p.name for p in present}:
                del self._seen[name]
            for path in present:
                if stop is not None and stop.is_set():
                    break
                try:
                    taken += await self._consider(path, now)
                except StoreUnavailableError:
                    raise  # every file waits: the role retries the scan later
                except Exception:  # a bug costs this file a later retry, never the others
                    log.exception("file intake: a file could not be taken; retried later")
                    self._seen.pop(path.name, None)
        self.scans += 1
        return taken

    def _candidates(self) -> list[Path]:
        found = []
        with os.scandir(self.inbox) as entries:
            for entry in entries:
                if entry.name.startswith(".") or entry.name.endswith(TEMPORARY_SUFFIXES):
                    continue
                if entry.is_file(follow_symlinks=False):
                    found.append(Path(entry.path))
        return sorted(found, key=lambda p: p.name)

    async def _consider(self, path: Path, now: float) -> bool:
        """Take ``path`` if it is complete; return whether it was taken."""
        look = await asyncio.to_thread(self._look, path, now)
        if look is None:
            return False
        if look.error is not None:
            await self._refuse(path, look.data, look.digest, "malformed", look.error)
            return True
        if not look.complete:
            if look.unchanged_s < self.incomplete_after_s:
                return False  # may still be written
            truncated = HprimError(
                f"no L (end) record after {self.incomplete_after_s:g} s unchanged: "
                "the file is truncated",
                code=100,
            )
            await self._refuse(path, look.data, look.digest, "truncated", truncated)
            return True
        await self._take(path, look.data, look.digest)
        return True

    def _look(self, path: Path, now: float) -> _Look | None:
        """Read ``path`` if it stayed unchanged long enough (blocking: runs in a thread)."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        seen = self._seen.get(path.name)
        if seen is None or (seen.size, seen.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            self._seen[path.name] = _Seen(stat.st_size, stat.st_mtime_ns, now)
            return None  # new or still changing: look again next scan
        if now - seen.since < self.settle_s or stat.st_size == 0:
            return None
        try:
            data = path.read_bytes()
            after = path.stat()
        except FileNotFoundError:
            return None
        if (after.st_size, after.st_mtime_ns, len(data)) != (seen.size, seen.mtime_ns, seen.size):
            self._seen.pop(path.name, None)  # it changed while being read
            return None
        digest = hashlib.sha256(data).hexdigest()
        if self._stuck.get(path.name) == digest:
            return None  # stored already; moving it failed and was reported
        try:
            text, _ = records.decode(data)
        except HprimError as error:
            return _Look(data, digest, False, now - seen.since, error)
        return _Look(data, digest, records.is_complete(text), now - seen.since)

    async def _take(self, path: Path, data: bytes, digest: str) -> None:
        with telemetry.ingress_span("file") as span:
            try:
                read = intake.read(
                    data, digest, directory=self.directory(), pseudonymizer=self.pseudonymizer
                )
            except HprimError as error:
                span.set_attribute("carebroker.outcome", "rejected")
                await self._refuse(path, data, digest, _kind(error), error)
                return
            trace = telemetry.current_context() if telemetry.is_recording() else None
            envelopes = [
                e.model_copy(update={"trace": trace}) if trace else e for e in read.envelopes
            ]
            span.set_attribute("carebroker.sender", read.sender.id)
            span.set_attribute("messaging.batch.message_count", len(envelopes))
            results = await self.messages.accept(
                [Accepted(e, b"", ACTOR) for e in envelopes]  # no answer: nobody waits
            )
        outcome = "duplicate" if all(r.duplicate for r in results) else "accepted"
        pickup = self._pickup(
            path, data, digest, outcome, read.sender.id, [r.message_id for r in results]
        )
        await self.files.record(pickup)
        await asyncio.to_thread(self._move, path, self.done, digest, pickup)
        self.stats[outcome] += 1
        log.info(
            "file taken",
            extra={
                "pickup_id": str(pickup.id),
                "partner": read.sender.id,
                "outcome": outcome,
                "messages": len(results),
            },
        )

    async def _refuse(
        self, path: Path, data: bytes, digest: str, kind: str, error: HprimError
    ) -> None:
        """Keep a refused file with its reason (once), then move it to error/ with the reason."""
        sender = intake.sender_of(data, self.directory())
        reason = f"{kind}: file {path.name}: {error}"
        control_id = "F" + digest[:19].upper()
        message_id = await self.files.refusal(control_id)
        if message_id is None:
            message_id, received_at = new_id_at()
            await self.messages.reject(
                [
                    Rejected(
                        message_id=message_id,
                        received_at=received_at,
                        channel="file",
                        format="hprim",
                        payload=data,
                        reason=reason,
                        sender=sender.id if sender else None,
                        control_id=control_id,
                        message_type="ORU^R01",
                        detail={
                            "kind": kind,
                            "file": path.name,
                            "record": error.record,
                            "field": error.field or None,
                            "code": error.code,
                        },
                        actor=ACTOR,
                    )
                ]
            )
        pickup = self._pickup(
            path, data, digest, "refused", sender.id if sender else None, [message_id], reason
        )
        await self.files.record(pickup)
        await asyncio.to_thread(self._write_reason, path.name, reason, digest, pickup)
        await asyncio.to_thread(self._move, path, self.error, digest, pickup)
        self.stats["refused"] += 1
        log.info(
            "file refused",
            extra={"pickup_id": str(pickup.id), "partner": pickup.sender or "-", "reason": kind},
        )

    def _pickup(
        self,
        path: Path,
        data: bytes,
        digest: str,
        outcome: str,
        sender: str | None,
        message_ids: list[uuid.UUID],
        reason: str | None = None,
    ) -> FilePickup:
        """Return the record of one file: refused ones go to error/, the others to done/."""
        return FilePickup(
            directory=str(self.inbox),
            name=path.name,
            sha256=digest,
            size=len(data),
            format=intake.FORMAT,
            outcome=outcome,
            moved_to="error" if outcome == "refused" else "done",
            sender=sender,
            reason=reason,
            message_ids=message_ids,
        )

    def _write_reason(self, name: str, reason: str, digest: str, pickup: FilePickup) -> None:
        """Write ``error/<name>.reason.txt`` (temporary name, then rename)."""
        at = datetime.now(UTC).isoformat(timespec="seconds")
        text = f"file: {name}\nrefused: {at}\nreason: {reason}\nsha256: {digest}\n"
        text += f"pickup: {pickup.id}\n"
        target = self.error / f"{name}.reason.txt"
        temporary = self.error / f".{name}.reason.tmp"
        try:
            temporary.write_text(text, encoding="utf-8")
            temporary.replace(target)
        except OSError:
            log.exception(
                "file intake: cannot write a reason file", extra={"pickup_id": str(pickup.id)}
            )

    def _move(self, path: Path, folder: Path, digest: str, pickup: FilePickup) -> None:
        """Move a file out of the directory, never over another file."""
        target = folder / path.name
        try:
            if target.exists():
                target = folder / f"{path.stem}.{digest[:12]}{path.suffix}"
            if target.exists():  # this very file was moved there before: drop the copy
                path.unlink()
            else:
                path.rename(target)
        except OSError:
            # Stored, not moved: left where it is, and not read again while unchanged.
            self._stuck[path.name] = digest
            log.exception("file intake: cannot move a file", extra={"pickup_id": str(pickup.id)})
            return
        self._stuck.pop(path.name, None)
        self._seen.pop(path.name, None)


def _kind(error: HprimError) -> str:
    """Return the refusal's kind, as ingress names them: unsupported, unknown_sender, malformed."""
    if error.code == 200:
        return "unsupported"
    if error.field == "H-5" and error.code == 103:
        return "unknown_sender"
    return "malformed"
