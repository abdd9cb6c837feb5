-- MSSanté (issue 15): what the application mailbox's notices said about each mail
-- carebroker sent. A mail is a delivery whose payload is the whole mail
-- (content_type 'message/rfc822...'); its Message-ID names the delivery.

-- One row per recipient block of a delivery status notification (DSN, RFC 3464)
-- or read receipt (MDN, RFC 8098) read from the mailbox. (notice_key, part) is
-- the idempotency key: a notice read again after a crash changes nothing.
CREATE TABLE mssante_notices (
    id           uuid        PRIMARY KEY,
    notice_key   text        NOT NULL,   -- the notice's Message-ID, else SHA-256 of its bytes
    part         integer     NOT NULL,   -- which recipient block of the notice (0-based)
    kind         text        NOT NULL CHECK (kind IN ('dsn', 'mdn')),
    delivery_id  uuid,                   -- the mail it reports on; NULL: not one of ours
    message_id   uuid,
    status       text        NOT NULL,   -- DSN Action, or MDN disposition type
    final        boolean     NOT NULL,
    success      boolean     NOT NULL,
    code         text,                   -- SMTPERRORCODE (DSN) or the consumer's error (MDN)
    label        text,
    words        text,                   -- the server's words (Status + Diagnostic-Code, Disposition)
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (notice_key, part)
);
CREATE INDEX mssante_notices_delivery ON mssante_notices (delivery_id, received_at);
CREATE INDEX mssante_notices_message ON mssante_notices (message_id);

-- Mails whose delivery notice is overdue (broker/alerts.py raises the alert), cleared when it comes.
CREATE TABLE mssante_overdue (
    delivery_id  uuid        PRIMARY KEY,
    message_id   uuid        NOT NULL,
    alerted_at   timestamptz NOT NULL DEFAULT now(),
    cleared_at   timestamptz
);
CREATE INDEX mssante_overdue_open ON mssante_overdue (delivery_id) WHERE cleared_at IS NULL;

-- The sweeps' work lists: mails that failed (a ZAM^Z02 N may be owed) and mails
-- sent whose delivery notice may be overdue.
CREATE INDEX deliveries_mssante_failed ON deliveries (updated_at)
    WHERE kind = 'message' AND content_type LIKE 'message/rfc822%' AND status IN ('failed', 'dead');
CREATE INDEX deliveries_mssante_sent ON deliveries (delivered_at)
    WHERE kind = 'message' AND content_type LIKE 'message/rfc822%' AND status = 'delivered';
