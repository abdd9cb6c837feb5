"""Settings: read once at start-up from ``CAREBROKER_*`` variables, then passed down.

:meth:`Settings.from_environment` is the one reader of the environment: the
commands call it once (``broker/commands/options.py``, where command-line
flags override the environment) and hand the result down; the roles find it
at ``ctx.settings``. Nothing else in carebroker reads ``os.environ`` or builds
settings of its own.

Nested models group a role's own settings (``mllp``, ``console``, ``fhir``);
their variables join the names with ``__``: ``Settings.console.cookie_secure``
is ``CAREBROKER_CONSOLE__COOKIE_SECURE``. A name from before a group existed
(``CAREBROKER_MLLP_PORT``, now ``CAREBROKER_MLLP__PORT``) is refused with its
new name, in the environment and as a keyword of ``Settings(...)``.
:func:`variables` lists every variable (the README's configuration table is
generated from it), and a
``CAREBROKER_*`` variable that is none of them stops start-up with its name,
so that a typo is an error rather than a default silently kept.

``charts/carebroker/values.yaml`` mirrors this model field for field.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.fhir.settings import FhirGatewaySettings
from adapters.files.settings import FileIntakeSettings
from adapters.hl7v2.ins import InsSettings
from adapters.hl7v2.settings import MllpSettings
from adapters.mssante.settings import MssanteSettings
from adapters.translate.settings import FeedSettings
from broker.console.settings import ConsoleSettings
from broker.errors import ConfigError

ENV_PREFIX = "CAREBROKER_"
NESTED_DELIMITER = "__"

Role = Literal["mllp", "fhir", "files", "relay", "router", "delivery", "audit", "console", "feed"]
ROLES: tuple[Role, ...] = (
    "mllp",
    "fhir",
    "files",
    "relay",
    "router",
    "delivery",
    "audit",
    "console",
    "feed",
)


class Settings(BaseSettings):
    """Everything carebroker reads from its environment."""

    # Unknown variables are refused by from_environment (with the name and a
    # suggestion) before pydantic reads anything, hence "ignore" here.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED_DELIMITER, extra="ignore"
    )

    # --- where the real parts are -------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL DSN. Unset: `carebroker up` starts an embedded PostgreSQL.",
    )
    database_pool_size: int = Field(
        default=10,
        ge=2,
        description="PostgreSQL connections per process shared by every role (ingress excepted).",
    )
    database_ingress_pool_size: int = Field(
        default=4,
        ge=1,
        description="PostgreSQL connections reserved for MLLP and FHIR ingress, opened at start "
        "in processes running those roles, so console, API or routing load never delays an ACK.",
    )
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
    kafka_fetch_max_wait_ms: int = Field(
        default=100,
        ge=1,
        le=30_000,
        description="Longest a consumer's fetch waits for records. Kafka answers as soon as "
        "records arrive; the local broker (tansu) waits the whole time, so `up` uses 10.",
    )

    # --- local embedded services (`carebroker up` only) ----------------------------
    data_dir: Path = Field(
        default=Path(".carebroker"),
        description="Where `up` keeps the embedded PostgreSQL data and local state.",
    )

    # --- partner directory ------------------------------------------------------
    config: Path | None = Field(
        default=None, description="Partner directory YAML (format: tests/data/partners.yaml)."
    )

    # --- listeners --------------------------------------------------------------
    http_host: str = Field(default="127.0.0.1", description="HTTP listen address.")
    http_port: int = Field(default=8080, ge=0, le=65535, description="HTTP listen port.")
    http_max_body_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest FHIR request body accepted (413 and an OperationOutcome beyond).",
    )
    http_max_api_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest body of every other HTTP route (console, API, mailbox): 413 "
        "beyond, without reading it.",
    )
    http_header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A request's line and headers must arrive within this many seconds of "
        "the connection opening (or the previous response); else 408 and closed.",
    )
    http_body_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="A request's body must arrive within this many seconds of its headers; "
        "else the connection is closed.",
    )
    http_max_connections: int = Field(
        default=4096,
        ge=16,
        description="Open connections per HTTP listener. When full, the connection waiting "
        "longest for its request is closed to make room.",
    )
    http_max_connections_per_address: int = Field(
        default=64,
        ge=1,
        description="Open HTTP connections from one client address (trusted proxies "
        "excepted); beyond, 503 and closed.",
    )
    http_trusted_proxies: str = Field(
        default="",
        description="Reverse proxies whose X-Forwarded-For names the client: addresses or "
        "CIDRs, comma-separated. Empty: none is believed.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that /metrics and GET /api/alerts require from any client. "
        "Unset: they answer loopback clients only (or any client of METRICS_PORT).",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Listen address of the metrics listener."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="A listener of its own for /metrics, /api/alerts and the health checks; "
        "set, they are served there (no longer on HTTP_PORT). Unset: no such listener.",
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

    # --- command-line client (`carebroker messages ...`) -------------------------------
    api_url: str | None = Field(
        default=None,
        description="The HTTP API the CLI talks to; unset: http://HTTP_HOST:HTTP_PORT.",
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="API token the CLI shows (`carebroker users token NAME`).",
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
        default=3600.0, gt=0, description="How often the audit role applies retention (seconds)."
    )

    # --- alerts ---------------------------------------------------------------------
    alert_interval_s: float = Field(
        default=30.0, gt=0, description="How often the audit role evaluates alerts (seconds)."
    )
    alert_queue_age_minutes: float = Field(
        default=30.0,
        gt=0,
        description="Alert when a recipient's oldest pending delivery is older (minutes).",
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

    # --- roles' own settings (nested: CAREBROKER_MLLP__..., CAREBROKER_CONSOLE__..., ...) ------
    mllp: MllpSettings = Field(
        default_factory=MllpSettings,
        description="The mllp role: listen address, TLS, sender verification, resource limits.",
    )
    console: ConsoleSettings = Field(
        default_factory=ConsoleSettings,
        description="The console role: sessions, sign-in throttling, API tokens, single sign-on.",
    )
    fhir: FhirGatewaySettings = Field(
        default_factory=FhirGatewaySettings,
        description="The fhir role: client certificates through a proxy, public base URL.",
    )
    feed: FeedSettings = Field(
        default_factory=FeedSettings,
        description="The feed role: the research stream's key and pseudonymisation, audited "
        "consumer groups.",
    )
    mssante: MssanteSettings = Field(
        default_factory=MssanteSettings,
        description="MSSanté: the application mailbox, its SMTP and IMAP servers, certificate.",
    )
    files: FileIntakeSettings = Field(
        default_factory=FileIntakeSettings,
        description="The files role: the drop directory of HPRIM Santé results, its pace.",
    )
    ins: InsSettings = Field(
        default_factory=InsSettings,
        description="The French national health identifier (INS) rules: production or test.",
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_names_from_before_the_nesting(cls, data: Any) -> Any:
        """Refuse ``Settings(mllp_port=0)``: with extra ignored it would silently do nothing."""
        if isinstance(data, dict):
            renamed = {"_".join(v.path): v.key for v in variables() if len(v.path) > 1}
            stale = [f"{k} is now {renamed[k]}" for k in data if k in renamed]
            if stale:
                raise ValueError("; ".join(stale))
        return data

    @classmethod
    def from_environment(cls, **overrides: Any) -> Settings:
        """Read the ``CAREBROKER_*`` environment once, with ``overrides`` laid over it.

        Raise ConfigError naming each unknown or invalid variable (never its
        value): a setting that would silently fall back to its default (say,
        ``COOKIE_SECURE`` misspelt) is refused at start-up instead.
        """
        unknown = unknown_variables(os.environ)
        if unknown:
            raise ConfigError(f"unknown settings: {'; '.join(unknown)}")
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = "; ".join(
                f"{variable_name(e['loc'])}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)
            )
            raise ConfigError(f"invalid settings: {problems}") from exc

    def database_dsn(self) -> str | None:
        """Return the PostgreSQL DSN, or None when an embedded one must be started."""
        return self.database_url.get_secret_value() if self.database_url else None


@dataclass(frozen=True)
class Variable:
    """One environment variable of the settings: its name and the field it sets."""

    name: str
    path: tuple[str, ...]
    field: FieldInfo

    @property
    def key(self) -> str:
        """Return the dotted path, as ``values.yaml`` nests it (``console.cookie_secure``)."""
        return ".".join(self.path)


def variable_name(path: tuple[str | int, ...]) -> str:
    """Return the variable that sets the field at ``path``: ``CAREBROKER_CONSOLE__OIDC_LABEL``."""
    return ENV_PREFIX + NESTED_DELIMITER.join(str(p) for p in path).upper()


def groups(model: type[BaseModel] = Settings) -> dict[str, type[BaseModel]]:
    """Return the nested models of ``model`` by field name (``console``, ``fhir``)."""
    return {
        name: field.annotation
        for name, field in model.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }


def variables(model: type[BaseModel] = Settings, path: tuple[str, ...] = ()) -> Iterator[Variable]:
    """Yield every variable the settings read, nested models' fields included, in order."""
    nested = groups(model)
    for name, field in model.model_fields.items():
        if name in nested:
            yield from variables(nested[name], (*path, name))
        else:
            yield Variable(variable_name((*path, name)), (*path, name), field)


# What the kubelet adds for every Service of the namespace when a pod keeps its
# service links: <SERVICE>_SERVICE_HOST, <SERVICE>_PORT=tcp://..., ... (a Service
# `carebroker-console` gives a CONSOLE_PORT after the prefix). The chart turns service
# links off; for other manifests, these names are let through when the
# <SERVICE>_SERVICE_HOST beside them shows they are a Service's.
_SERVICE_LINK = re.compile(r"SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)(_\w+)?)?")


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Return, for each ``CAREBROKER_*`` name the settings do not read, what is wrong.

    Names only, never values. A name from before the nested models
    (``CAREBROKER_CONSOLE_COOKIE_SECURE``) is told its new name.
    """
    known = {v.name for v in variables()} | {variable_name((g,)) for g in groups()}
    renamed = {
        ENV_PREFIX + "_".join(v.path).upper(): v.name for v in variables() if len(v.path) > 1
    }
    services = {
        k.upper().removesuffix("_SERVICE_HOST")
        for k in environ
        if k.upper().endswith("_SERVICE_HOST")
    }
    problems = []
    for key in sorted(environ):
        name = key.upper()  # pydantic-settings reads names case-insensitively
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        if any(
            name.startswith(f"{s}_") and _SERVICE_LINK.fullmatch(name[len(s) + 1 :])
            for s in services
        ):
            continue
        if name in renamed:
            problems.append(f"{key} is now {renamed[name]}")
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        problems.append(
            f"{key} is not a setting" + (f" (did you mean {close[0]}?)" if close else "")
        )
    return problems
