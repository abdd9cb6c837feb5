-- The append-only, hash-chained audit trail (design invariant 5) and what
-- /metrics derives from it. broker/store/audit.py writes and verifies it.
--
-- One hash chain per UTC day, and one partition per day: a chain lives in one
-- partition, so retention drops whole days (whole chains) and verification of
-- what is left stays exact. Each day's first event links to the previous
-- day's last hash (kept in audit_heads even after that day is dropped).

CREATE TABLE audit (
    day          date        NOT NULL,   -- the chain (UTC day the writer appended it)
    seq          bigint      NOT NULL,   -- position in the day's chain, from 1, no gaps
    event_id     uuid        NOT NULL,
    occurred_at  timestamptz NOT NULL,   -- when the hop happened (the role's clock)
    recorded_at  timestamptz NOT NULL,   -- when the writer chained it (PostgreSQL's clock)
    kind         text        NOT NULL,
    actor        text        NOT NULL,
    outcome      text        NOT NULL,
    message_id   uuid,
    control_id   text,
    partner      text,
    recipient    text,
    rule         text,
    detail       jsonb       NOT NULL DEFAULT '{}',
    prev_hash    bytea       NOT NULL,
    hash         bytea       NOT NULL,
    PRIMARY KEY (day, seq)
) PARTITION BY RANGE (day);

CREATE TABLE audit_default PARTITION OF audit DEFAULT;
-- A message's timeline is an index lookup (message id, then chain order).
CREATE INDEX audit_message ON audit (message_id, day, seq) WHERE message_id IS NOT NULL;

-- The last link of each day's chain, updated in the writer's transaction: it
-- lets `audit verify` notice a truncated tail and check the link from a day
-- whose predecessor retention already dropped.
CREATE TABLE audit_heads (
    day         date        PRIMARY KEY,
    seq         bigint      NOT NULL,
    hash        bytea       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Append-only: refuse UPDATE and DELETE for everyone, owner included (an
-- attacker with superuser rights can disable this; the hash chain then tells).
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
-- Statement triggers are not inherited by partitions: partitions.py adds this
-- one to every audit partition it creates.
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_default
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Counts /metrics reads, maintained by the audit writer in the transaction that
-- chains the events, so each event is counted exactly once whoever scrapes.
CREATE TABLE audit_counters (
    kind          text   NOT NULL,
    partner       text   NOT NULL,   -- sender, or the recipient for delivery events
    message_type  text   NOT NULL,
    n             bigint NOT NULL,
    PRIMARY KEY (kind, partner, message_type)
);

-- Delivery latency (accepted -> delivered) per recipient, one row per bucket.
CREATE TABLE delivery_latency (
    recipient  text             NOT NULL,
    bucket     smallint         NOT NULL,  -- index into broker.metrics.LATENCY_BUCKETS (+Inf last)
    n          bigint           NOT NULL,
    sum_s      double precision NOT NULL,
    PRIMARY KEY (recipient, bucket)
);

-- Where each exporter (the syslog sender) has got to in the chain: the audit
-- table itself is the local buffer while the repository is unreachable.
CREATE TABLE audit_cursors (
    name        text        PRIMARY KEY,
    day         date        NOT NULL,
    seq         bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Alerts carebroker evaluates itself: firing since when, resolved when.
CREATE TABLE alerts (
    name         text        NOT NULL,   -- sender_silent | queue_stale | dead_letters | certificate_expiring
    subject      text        NOT NULL,   -- partner id, recipient, or certificate file
    since        timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    resolved_at  timestamptz,
    detail       jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (name, subject, since)
);
CREATE INDEX alerts_open ON alerts (name, subject) WHERE resolved_at IS NULL;

-- The application role: what carebroker's roles run as in a deployment that
-- separates it from the owner running migrations and retention. It may
-- insert and read audit rows, never change them. Created only when the
-- migrating user may create roles (managed PostgreSQL may not allow it).
DO $$
BEGIN
    BEGIN
        CREATE ROLE carebroker_app NOLOGIN;
    EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;  -- another database made it
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'carebroker_app not created: no CREATEROLE privilege';
            RETURN;
    END;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO carebroker_app', current_schema());
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO carebroker_app;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO carebroker_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO carebroker_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO carebroker_app;
    REVOKE UPDATE, DELETE, TRUNCATE ON audit, audit_default FROM carebroker_app;
END;
$$;
