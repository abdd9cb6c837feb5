"""Deliver by writing a file in the partner's directory: temporary name first, then rename.

For partners exchanging files (GP software reading HPRIM from a folder, a
transfer tool picking them up): each delivery becomes one file named after
it (``<delivery id>.<extension of its content type>``), written under a
temporary name starting with ``.`` and renamed when whole, so a reader never
sees half a file (a rename within one file system is atomic). A retry writes
the same name with the same bytes. The name carries ids only, never patient
data.

An MSSanté endpoint attaches the same bytes under the same name
(:func:`file_name`): that is the seam the MSSanté transport uses to send HPRIM
as an attachment.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from broker.directory import DirectoryEndpoint
from routing.transports import Outcome, Outgoing

EXTENSIONS = {
    "text/x-hprim-medecins": ".hpm",
    "text/x-hprim-sante": ".hpr",
    "x-application/hl7-v2+er7": ".hl7",
    "application/fhir+json": ".json",
}


def file_name(item: Outgoing) -> str:
    """Return the file a delivery is written as: its id and its format's extension."""
    media = item.content_type.split(";", 1)[0].strip()
    return f"{item.delivery_id}{EXTENSIONS.get(media, '.dat')}"


class DirectoryTransport:
    """Write deliveries as files in one directory."""

    concurrency = 4

    def __init__(self, partner_id: str, endpoint: DirectoryEndpoint) -> None:
        self.partner_id = partner_id
        self.path = endpoint.path

    async def send(self, item: Outgoing) -> Outcome:
        """Write the file; a directory that cannot be written to is retried later."""
        try:
            await asyncio.to_thread(_write, self.path, file_name(item), item.payload)
        except OSError as exc:
            return Outcome("retry", "directory", f"cannot write: {exc.strerror or 'error'}")
        return Outcome("delivered", "written")

    async def close(self) -> None:
        """Nothing to close."""


def _write(folder: Path, name: str, data: bytes) -> None:
    temporary = folder / f".{name}.tmp"
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())  # whole on disk before its name says it is there
    temporary.replace(folder / name)
