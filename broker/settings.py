"""Settings: read once at start-up from ``CAREBROKER_*`` variables, then passed down.

Command-line flags override the environment (see ``broker/cli.py``). Nothing
else in carebroker reads ``os.environ``. ``charts/carebroker/values.yaml``
mirrors this model field for field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Role = Literal["mllp", "fhir", "relay", "router", "delivery", "audit", "console"]
ROLES: tuple[Role, ...] = ("mllp", "fhir", "relay", "router", "delivery", "audit", "console")


class Settings(BaseSettings):
    """Everything carebroker reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="CAREBROKER_", env_nested_delimiter="__", extra="ignore"
    )

    # --- where the real parts are -------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL DSN. Unset: `carebroker up` starts an embedded PostgreSQL.",
    )
    database_pool_size: int = Field(default=10, ge=2, description="asyncpg pool size per process.")
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        description="Kafka bootstrap servers (host:port,...). Unset: `up` starts a local broker.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Kafka security protocol."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism when the protocol is SASL_*."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle for Kafka TLS.")
    kafka_topic_prefix: str = Field(
        default="", description="Prefix for every topic name (tests and shared clusters)."
    )
    kafka_partitions: int = Field(
        default=12, ge=1, description="Partitions of the topics carebroker creates."
    )
    kafka_replication_factor: int = Field(
        default=1, ge=1, description="Replication factor of the topics carebroker creates."
    )

    # --- local embedded services (`carebroker up` only) ----------------------------
    data_dir: Path = Field(
        default=Path(".carebroker"),
        description="Where `up` keeps the embedded PostgreSQL data and local state.",
    )

    # --- partner directory ------------------------------------------------------
    config: Path | None = Field(
        default=None, description="Partner directory YAML (see partners-example.yaml)."
    )

    # --- listeners --------------------------------------------------------------
    mllp_host: str = Field(default="127.0.0.1", description="MLLP listen address.")
    mllp_port: int = Field(default=2575, ge=0, le=65535, description="MLLP listen port.")
    mllp_max_frame_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest MLLP frame accepted; a larger one is refused with AR.",
    )
    mllp_idle_timeout_s: float = Field(
        default=300.0, gt=0, description="Close an MLLP connection idle this long."
    )
    mllp_tls_cert: Path | None = Field(default=None, description="Server certificate (PEM).")
    mllp_tls_key: Path | None = Field(default=None, description="Server private key (PEM).")
    mllp_tls_client_ca: Path | None = Field(
        default=None, description="CA for client certificates: set to require mutual TLS."
    )
    http_host: str = Field(default="127.0.0.1", description="HTTP listen address.")
    http_port: int = Field(default=8080, ge=0, le=65535, description="HTTP listen port.")
    http_max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Largest HTTP request body accepted."
    )

    # --- pipeline tuning --------------------------------------------------------
    ingress_batch_max: int = Field(
        default=500, ge=1, description="Most messages committed to PostgreSQL in one batch."
    )
    outbox_shards: int = Field(
        default=8, ge=1, description="Outbox shards; each is relayed in order by one process."
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="HMAC key for patient keys. Unset: a key kept in the database is used.",
    )

    # --- observability ----------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level."
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP endpoint (traces and metrics, e.g. http://collector:4318); "
        "unset: no export.",
    )

    # --- audit trail -----------------------------------------------------------------
    audit_batch: int = Field(
        default=1000, ge=1, description="Most pending audit events chained in one transaction."
    )
    audit_syslog_host: str | None = Field(
        default=None,
        description="Audit Record Repository (IHE ATNA) to stream audit messages to over "
        "RFC 5424 syslog; unset: no streaming.",
    )
    audit_syslog_port: int = Field(
        default=6514, ge=1, le=65535, description="Syslog port (6514: syslog over TLS)."
    )
    audit_syslog_tls: bool = Field(
        default=True, description="Use TLS (RFC 5425) to the repository."
    )
    audit_syslog_ca: Path | None = Field(
        default=None, description="CA bundle that signs the repository's certificate."
    )
    audit_syslog_cert: Path | None = Field(
        default=None, description="Client certificate (PEM) for mutual TLS (IHE ITI-19)."
    )
    audit_syslog_key: Path | None = Field(default=None, description="Client private key (PEM).")

    # --- retention (whole daily partitions are dropped) -----------------------------------
    retention_payload_days: int = Field(
        default=30, ge=1, description="Days original bytes are kept (payloads)."
    )
    retention_message_days: int = Field(
        default=180, ge=1, description="Days message metadata is kept (messages)."
    )
    retention_audit_days: int = Field(
        default=365,
        ge=1,
        description="Days the audit trail is kept (CNIL: 6 months to 1 year; > payloads).",
    )
    retention_interval_s: float = Field(
        default=3600.0, gt=0, description="How often the audit role applies retention."
    )

    # --- alerts ---------------------------------------------------------------------
    alert_interval_s: float = Field(
        default=30.0, gt=0, description="How often the audit role evaluates alerts."
    )
    alert_queue_age_minutes: float = Field(
        default=30.0, gt=0, description="Alert when a recipient's oldest pending delivery is older."
    )
    alert_dead_letters: bool = Field(
        default=True, description="Alert while a recipient has dead-lettered deliveries."
    )
    alert_certificate_days: int = Field(
        default=30,
        ge=1,
        description="Alert when a certificate carebroker uses (MLLP TLS, syslog TLS, Kafka CA) "
        "expires within this many days.",
    )

    def database_dsn(self) -> str | None:
        """Return the PostgreSQL DSN, or None when an embedded one must be started."""
        return self.database_url.get_secret_value() if self.database_url else None
