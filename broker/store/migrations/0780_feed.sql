-- FHIR feeds (issue 19): what each audited consumer group has read.
--
-- The feed role reads, every `feed.audit_interval_s`, the committed offsets of
-- the consumer groups named in `feed.consumer_groups` on the feed topics, and
-- records a `feed_read` audit event for each advance (group, topic,
-- partition, from, to) in the transaction that moves the row below. With the
-- `published` events (topic, partition, offset of every record), the audit
-- trail tells which group read which message.
CREATE TABLE feed_read_offsets (
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    committed   bigint      NOT NULL,
    audited_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);
