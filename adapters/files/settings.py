"""Settings of the ``files`` role (``CAREBROKER_FILES__*``): the watched drop directory."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class FileIntakeSettings(BaseModel):
    """Where labs drop HPRIM Santé files, and how the ``files`` role decides one is complete."""

    model_config = ConfigDict(extra="forbid")

    directory: Path | None = Field(
        default=None,
        description="Drop directory watched for HPRIM Santé result files; taken files move to "
        "its done/ and refused ones to its error/ (with a .reason.txt). Unset: the role idles.",
    )
    poll_interval_s: float = Field(
        default=2.0, gt=0, description="How often the directory is scanned (seconds)."
    )
    settle_s: float = Field(
        default=1.0,
        ge=0,
        description="A file is read only once its size and time stayed unchanged this long, "
        "across two scans (seconds).",
    )
    incomplete_after_s: float = Field(
        default=600.0,
        gt=0,
        description="A file still without its L (end) record after staying unchanged this long "
        "is refused as truncated (seconds).",
    )
