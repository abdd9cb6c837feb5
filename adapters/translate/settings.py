"""Settings of the ``feed`` role (``CAREBROKER_FEED__<NAME>``): the research key and policy.

Which senders and message types go on the feeds is the directory's
(``feed:`` per partner); these settings say how the research stream is
pseudonymised and which consumer groups' reading is audited.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class FeedSettings(BaseModel):
    """How the feed role pseudonymises the research stream and audits its readers."""

    # A misspelt CAREBROKER_FEED__... variable is an error, not a default silently kept.
    model_config = ConfigDict(extra="forbid")

    research_key: SecretStr | None = Field(
        default=None,
        description="HMAC key of the research stream's pseudonyms and date shifts (at least "
        "16 bytes), never the routing key. Unset: a key generated once and kept in the "
        "database (apart from the routing key).",
    )
    research_date_shift_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="Dates of the research stream move by a per-patient offset of up to this "
        "many days, either way (intervals kept).",
    )
    research_birth_date: Literal["year", "month"] = Field(
        default="year", description="What the research stream keeps of a birth date."
    )
    research_postal_codes_kept: str = Field(
        default="",
        description="Postal codes the research stream keeps whole, comma-separated (large "
        "towns, per the DPO); every other French code becomes its département, others are "
        "removed.",
    )
    consumer_groups: str = Field(
        default="",
        description="Consumer groups of the data platforms reading the feeds, comma-separated: "
        "what each has read is audited (`feed_read`, committed offsets per partition).",
    )
    audit_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="How often the consumer groups' committed offsets are read and audited.",
    )

    @field_validator("research_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value().encode()) < 16:
            raise ValueError("the research key must be at least 16 bytes")
        return key

    def postal_codes_kept(self) -> frozenset[str]:
        """Return the postal codes kept whole."""
        return frozenset(_items(self.research_postal_codes_kept))

    def audited_groups(self) -> list[str]:
        """Return the consumer groups whose reading is audited."""
        return _items(self.consumer_groups)


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]
