"""carebroker's error tree.

Every error carebroker raises on purpose derives from :class:`BrokerError`.
The split below is by what the caller does next, not by where it happened::

    BrokerError
    ├── PermanentError          answer AE/AR or 4xx, keep the input, never retry
    │   ├── MessageError        the message itself is wrong (malformed, bad charset)
    │   ├── PartnerError        unknown partner, spoofed sender, forbidden
    │   ├── RoutingError        no recipient can be resolved
    │   └── StoreRefusedError   PostgreSQL refused a statement (constraint, data):
    │       │                   the same statement fails the same way again
    │       ├── StorePrivilegeError  the database role may not do it
    │       └── SchemaMissingError   no carebroker schema there (not migrated)
    ├── TransientError          retry with backoff; the input stays durable
    │   ├── StoreUnavailableError   PostgreSQL cannot be reached or failed
    │   ├── KafkaUnavailableError   the Kafka cluster cannot be reached
    │   └── DeliveryTimeoutError    a partner did not answer in time
    └── StartupError            `carebroker up` / `run` cannot start; the text is
        ├── ConfigError          shown to the user as is, without a traceback
        └── ServiceUnreachableError

Third-party exceptions (asyncpg, aiokafka, OSError, pydantic) are translated
once, at the boundary that calls the library, with ``raise X(...) from exc``:
every asyncpg error in ``broker.store.db`` (``transaction``, ``connection``),
so nothing above ``broker/store/`` names asyncpg.
Messages carry ids, never values: ``f"OBX-5 invalid in {control_id}"``
(design invariant 6).
"""

from __future__ import annotations


class BrokerError(Exception):
    """Root of every error carebroker raises on purpose."""


class PermanentError(BrokerError):
    """An input that will fail the same way every time: answer it, keep it, do not retry."""


class MessageError(PermanentError):
    """The message is malformed or cannot be decoded.

    ``location`` is an HL7 v2 location (``"MSH-9"``, ``"PID-3[2].4"``) or a
    FHIRPath; ``code`` is the HL7 table 0357 error code the ACK carries.
    """

    def __init__(self, text: str, *, location: str | None = None, code: int = 207) -> None:
        super().__init__(text)
        self.location = location
        self.code = code


class PartnerError(PermanentError):
    """The sender is unknown, not allowed, or poses as another partner."""


class RoutingError(PermanentError):
    """No recipient can be resolved for a message."""


class StoreRefusedError(PermanentError):
    """PostgreSQL refused a statement for a reason of its own (constraint, data, privilege).

    Retrying the same statement fails the same way: a batch is split and each
    item tried alone, a single item is kept aside with the reason.
    """


class StorePrivilegeError(StoreRefusedError):
    """The database role may not do this (drop a partition, write the audit table)."""


class SchemaMissingError(StoreRefusedError):
    """The database has no carebroker table there: a wrong database, or not migrated."""


class TransientError(BrokerError):
    """A failure that may pass: retry later; nothing accepted is lost meanwhile."""


class StoreUnavailableError(TransientError):
    """PostgreSQL cannot be reached or a statement failed for a reason outside the input."""


class KafkaUnavailableError(TransientError):
    """The Kafka cluster cannot be reached."""


class DeliveryTimeoutError(TransientError):
    """A partner did not answer within its timeout."""


class StartupError(BrokerError):
    """carebroker cannot start; the message is meant for the person who started it."""


class ConfigError(StartupError):
    """A configuration file or setting is invalid; the message names file, line and field."""


class ServiceUnreachableError(StartupError):
    """A configured PostgreSQL or Kafka cannot be reached; the message names which and where."""
