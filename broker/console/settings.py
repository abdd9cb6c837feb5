"""Console settings: ``CAREBROKER_CONSOLE_*`` variables, read once when the role starts.

Kept beside the console rather than in ``broker/settings.py`` so the console
can grow its options without touching the spine; the lead may nest this model
there as ``Settings.console`` (the variable names stay the same).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """How operators sign in to the console and how long they stay signed in."""

    model_config = SettingsConfigDict(env_prefix="CAREBROKER_CONSOLE_", extra="ignore")

    session_idle_timeout_s: int = Field(
        default=30 * 60,
        ge=60,
        description="A browser or CLI session unused this long is signed out.",
    )
    session_lifetime_s: int = Field(
        default=12 * 3600,
        ge=300,
        description="A browser or CLI session ends this long after sign-in, used or not.",
    )
    cookie_secure: bool = Field(
        default=False,
        description="Send the session cookie over HTTPS only. Set it when the console is "
        "served behind TLS (always, outside a workstation).",
    )
    flows_cache_s: float = Field(
        default=2.0,
        ge=0,
        description="Operators polling the flows page within this many seconds share one "
        "computation of it.",
    )
    sign_in_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins for one user name within `sign_in_lockout_s` before "
        "further attempts are refused until that window passes.",
    )
    sign_in_lockout_s: int = Field(
        default=15 * 60, ge=1, description="Window of the failed sign-in count."
    )
