"""Console settings: ``CAREBROKER_CONSOLE_*`` variables, read once when the role starts.

Kept beside the console rather than in ``broker/settings.py`` so the console
can grow its options without touching the spine; the lead may nest this model
there as ``Settings.console`` (the variable names stay the same).
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.console.users import UserRole


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

    # --- OpenID Connect (optional; see broker/console/oidc.py) --------------------
    oidc_issuer: str | None = Field(
        default=None,
        description="Issuer URL of an OpenID Connect provider; with a client id, the sign-in "
        "page offers single sign-on.",
    )
    oidc_client_id: str | None = Field(default=None, description="carebroker's client id there.")
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
