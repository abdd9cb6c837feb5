"""The ``files`` role: watch a drop directory for HPRIM Santé results (adapters/files/pickup.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from adapters.files.pickup import FileIntake
from broker.context import TaskRole
from broker.errors import StoreUnavailableError

if TYPE_CHECKING:
    from broker.context import Context

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 3600.0


class FilesRole(TaskRole):
    """Scan the drop directory every ``poll_interval_s``; idle when none is configured."""

    name = "files"

    def __init__(self) -> None:
        super().__init__()
        self.intake: FileIntake | None = None
        self._poll_s = 2.0

    async def start(self, ctx: Context) -> None:
        """Check the directory (done/ and error/ made), then start scanning."""
        settings = ctx.settings.files
        if settings.directory is not None:
            self.intake = FileIntake(
                settings.directory.resolve(),
                messages=ctx.stores.messages,
                files=ctx.stores.files,
                directory=lambda: ctx.directory,
                pseudonymizer=ctx.pseudonymizer,
                settle_s=settings.settle_s,
                incomplete_after_s=settings.incomplete_after_s,
            )
            self.intake.prepare()
            self._poll_s = settings.poll_interval_s
        await super().start(ctx)

    async def run(self, ctx: Context) -> None:
        """Scan until the process stops; a store outage only delays the next scan."""
        if self.intake is None:
            await ctx.stop.wait()
            return
        forgotten_at = 0.0
        loop = asyncio.get_running_loop()
        while not ctx.stop.is_set():
            try:
                await self.intake.scan(ctx.stop)
                if loop.time() - forgotten_at > RETENTION_EVERY_S:
                    days = ctx.settings.retention_message_days
                    cutoff = datetime.now(UTC) - timedelta(days=days)
                    await self.intake.files.forget_before(cutoff)
                    forgotten_at = loop.time()
            except StoreUnavailableError:
                log.warning("file intake: message store unavailable, files wait")
            except OSError as exc:
                log.error("file intake: cannot scan the directory: %s", exc.strerror or "error")  # noqa: TRY400 - names no file
            except Exception:  # the role keeps scanning whatever one pass ran into
                log.exception("file intake: scan failed; next scan in %s s", self._poll_s)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await ctx.stop.wait()

    def endpoints(self) -> list[str]:
        """Return the banner line: the directory watched, or why nothing is."""
        if self.intake is None:
            return ["files: no drop directory (CAREBROKER_FILES__DIRECTORY): idle"]
        return [
            f"files: {self.intake.inbox} every {self._poll_s:g} s "
            "(HPRIM Santé results; done/ and error/ beside them)"
        ]
