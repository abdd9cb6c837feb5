"""FHIR gateway settings: ``Settings.fhir``, from ``CAREBROKER_FHIR__*`` variables.

A plain model nested in :class:`broker.settings.Settings`, which reads the
environment once at start-up; the ``fhir`` role finds it at
``ctx.settings.fhir``. Kept apart from ``auth.py`` and ``gateway.py`` so that
the settings model imports nothing but pydantic.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FhirGatewaySettings(BaseModel):
    """How the FHIR gateway trusts a proxy's certificate header and names itself."""

    # A misspelt CAREBROKER_FHIR__... variable is an error, not a default silently kept.
    model_config = ConfigDict(extra="forbid")

    client_cert_header: str | None = Field(
        default=None,
        description="Header in which a trusted TLS proxy passes the client certificate CN; "
        "unset: client certificates are not used.",
    )
    base_url: str | None = Field(
        default=None,
        description="Public base URL of the FHIR endpoint (Location headers, "
        "CapabilityStatement); unset: taken from each request.",
    )
