-- carebroker spine: messages, payloads, outbox, deliveries, secrets.
-- Time-partitioned tables get their partitions from broker/store/partitions.py
-- (created ahead of time; a DEFAULT partition catches clock anomalies so an
-- insert never fails for want of a partition).

CREATE TABLE messages (
    id                    uuid        NOT NULL,
    received_at           timestamptz NOT NULL,   -- equals the time in the UUIDv7 id
    channel               text        NOT NULL,   -- mllp | fhir | file
    format                text        NOT NULL,   -- hl7v2 | fhir
    sender                text,                   -- partner id; NULL when unknown
    sending_application   text        NOT NULL DEFAULT '',
    sending_facility      text        NOT NULL DEFAULT '',
    control_id            text        NOT NULL DEFAULT '',
    message_type          text        NOT NULL DEFAULT '',
    version               text        NOT NULL DEFAULT '',
    status                text        NOT NULL,   -- accepted | rejected | routed | unroutable
    reason                text,                   -- why rejected / unroutable (no patient data)
    batch_id              text,
    charset               text,
    size                  integer     NOT NULL,
    patient_digests       text[]      NOT NULL DEFAULT '{}',
    envelope              jsonb,                  -- routing view, without the payload
    ack                   bytea,                  -- the answer sent to the sender
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (received_at, id)
) PARTITION BY RANGE (received_at);

CREATE TABLE messages_default PARTITION OF messages DEFAULT;
CREATE INDEX messages_control_id ON messages (control_id, received_at DESC);
CREATE INDEX messages_id ON messages (id);
CREATE INDEX messages_sender ON messages (sender, received_at DESC);
CREATE INDEX messages_status ON messages (status, received_at DESC);
CREATE INDEX messages_type ON messages (message_type, received_at DESC);
CREATE INDEX messages_patient ON messages USING gin (patient_digests);

-- Original bytes, kept apart so payload retention can be shorter than metadata's.
CREATE TABLE payloads (
    message_id   uuid        NOT NULL,
    received_at  timestamptz NOT NULL,
    data         bytea       NOT NULL,
    truncated    boolean     NOT NULL DEFAULT false,  -- rejected input is size-capped
    PRIMARY KEY (received_at, message_id)
) PARTITION BY RANGE (received_at);

CREATE TABLE payloads_default PARTITION OF payloads DEFAULT;

-- Ingress idempotency: (sender, MSH-3, MSH-10) -> the message and the answer sent.
CREATE TABLE ingress_keys (
    sender               text        NOT NULL,
    sending_application  text        NOT NULL,
    control_id           text        NOT NULL,
    message_id           uuid        NOT NULL,
    received_at          timestamptz NOT NULL,
    ack                  bytea,
    duplicates           integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (sender, sending_application, control_id)
);
CREATE INDEX ingress_keys_age ON ingress_keys (received_at);

-- Transactional outbox: what must reach Kafka, written in the same transaction
-- as the state it announces (design invariant 1). One relay per shard keeps
-- per-key order.
CREATE TABLE outbox (
    id          bigserial   PRIMARY KEY,
    shard       smallint    NOT NULL,
    topic       text        NOT NULL,
    key         bytea,
    value       bytea       NOT NULL,
    partition   integer,                -- explicit partition (delivery lanes), else by key
    headers     jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_shard ON outbox (shard, id);

-- One row per (message, recipient): the delivery state machine.
CREATE TABLE deliveries (
    id                   uuid        PRIMARY KEY,
    message_id           uuid        NOT NULL,
    message_received_at  timestamptz NOT NULL,
    recipient            text        NOT NULL,
    rules                text[]      NOT NULL DEFAULT '{}',
    lane                 text        NOT NULL,
    partition            integer     NOT NULL,
    status               text        NOT NULL DEFAULT 'pending',  -- pending|delivered|failed|dead|blocked
    attempts             integer     NOT NULL DEFAULT 0,
    next_attempt_at      timestamptz NOT NULL DEFAULT now(),
    last_error           text,
    response             bytea,
    payload              bytea,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    delivered_at         timestamptz,
    UNIQUE (message_id, recipient)
);
CREATE INDEX deliveries_pending ON deliveries (partition, lane, message_received_at, message_id)
    WHERE status = 'pending';
CREATE INDEX deliveries_recipient ON deliveries (recipient, status, created_at);

-- Secrets carebroker generates for itself (the pseudonym key when none is configured).
CREATE TABLE broker_secrets (
    name        text        PRIMARY KEY,
    value       bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Audit events recorded in the transaction that changes the state they
-- describe; the audit writer moves them, hash-chained, into the audit trail.
CREATE TABLE audit_pending (
    id          bigserial   PRIMARY KEY,
    event       jsonb       NOT NULL
);
