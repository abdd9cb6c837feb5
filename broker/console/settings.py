"""Console settings: ``Settings.console``, from ``CAREBROKER_CONSOLE__*`` variables.

A plain model nested in :class:`broker.settings.Settings`, which reads the
environment once at start-up; the console role finds it at
``ctx.settings.console``. It is defined beside the console so that the console
grows its options here, and ``values.yaml`` (``settings.console``), the schema
and the README table follow (``tests/chart``, ``tests/unit/test_settings.py``
name what is missing).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from broker.console.users import UserRole


class ConsoleSettings(BaseModel):
    """How operators sign in to the console and how long they stay signed in."""

    # A misspelt CAREBROKER_CONSOLE__... variable is an error, not a default silently kept.
    model_config = ConfigDict(extra="forbid")

    session_idle_timeout_s: int = Field(
        default=30 * 60,
        ge=60,
        description="A browser or CLI session unused this long (seconds) is signed out.",
    )
    session_lifetime_s: int = Field(
        default=12 * 3600,
        ge=300,
        description="A browser or CLI session ends this long (seconds) after sign-in, used or not.",
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
        description="Failed sign-ins for one user name within `sign_in_window_s` before each "
        "further attempt waits (1 s, then doubling, at most `sign_in_max_delay_s`).",
    )
    sign_in_max_delay_s: int = Field(
        default=30,
        ge=1,
        le=300,
        description="Longest wait between two sign-in attempts for one user name: a stranger "
        "guessing at a name slows its owner by this much, never locks them out.",
    )
    sign_in_address_max_failures: int = Field(
        default=10,
        ge=1,
        description="Failed sign-ins from one client address (any names) within "
        "`sign_in_window_s` before each further attempt from it waits.",
    )
    sign_in_address_max_delay_s: int = Field(
        default=120,
        ge=1,
        description="Longest wait between two sign-in attempts from one client address.",
    )
    sign_in_window_s: int = Field(
        default=15 * 60,
        ge=1,
        description="Failed sign-ins older than this (seconds) are forgotten.",
    )
    api_token_max_days: int = Field(
        default=365,
        ge=1,
        description="Longest lifetime of an API token (`carebroker users token --days`); "
        "a token older than this is refused, whatever it was issued for.",
    )

    # --- OpenID Connect (optional; see broker/console/oidc.py) --------------------
    oidc_issuer: str | None = Field(
        default=None,
        description="Issuer URL of an OpenID Connect provider; with a client id, the sign-in "
        "page offers single sign-on.",
    )
    oidc_client_id: str | None = Field(
        default=None, description="carebroker's client id at that provider."
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="Client secret (client_secret_basic); unset: a public client."
    )
    oidc_redirect_url: str | None = Field(
        default=None,
        description="Callback URL as the provider must call it (behind a proxy); unset: "
        "derived from the request, `.../console/oidc/callback`.",
    )
    oidc_scopes: str = Field(default="openid profile", description="Scopes asked for.")
    oidc_name_claim: str = Field(
        default="preferred_username", description="Claim holding the console user name."
    )
    oidc_role_claim: str = Field(
        default="carebroker_role",
        description="Claim naming the role (a string or a list; the highest known role wins).",
    )
    oidc_default_role: UserRole | None = Field(
        default=None,
        description="Role of new users whose token has no role claim; unset: they are refused.",
    )
    oidc_label: str = Field(default="single sign-on", description="Name of the provider's button.")
