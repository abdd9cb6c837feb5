-- Operator actions from the console (issue 7, second round): paused deliveries,
-- discarded dead letters, acknowledged and silenced alerts, and the index the
-- alerts page reads its history through.

-- A partner whose deliveries are paused: every delivery instance leaves its
-- lanes alone (routing/delivery.py: fetch_heads) until the row is deleted.
-- In PostgreSQL, not in a process, so a pause holds across instances and restarts.
CREATE TABLE delivery_pauses (
    recipient   text        PRIMARY KEY,   -- partner id
    reason      text        NOT NULL,
    paused_by   text        NOT NULL,      -- audit actor, user:<name>
    paused_at   timestamptz NOT NULL DEFAULT now()
);

-- A dead letter (status failed or dead) an operator decided not to deliver.
-- The status keeps what happened to the delivery; these say it left the
-- dead-letter queue, who took it out and why. Replaying it by id clears them.
ALTER TABLE deliveries
    ADD COLUMN discarded_at    timestamptz,
    ADD COLUMN discarded_by    text,
    ADD COLUMN discard_reason  text;

-- The dead-letter page: newest failures first, discarded ones left out.
CREATE INDEX deliveries_dead_letters ON deliveries (updated_at DESC, id DESC)
    WHERE status IN ('failed', 'dead') AND discarded_at IS NULL;

-- An operator saw this occurrence of an alert (it stays acknowledged until it
-- resolves; a new occurrence is a new row, unacknowledged).
ALTER TABLE alerts
    ADD COLUMN acknowledged_at      timestamptz,
    ADD COLUMN acknowledged_by      text,
    ADD COLUMN acknowledge_reason   text;

-- An alert (name, subject) silenced until a time, whatever its occurrences:
-- still evaluated and shown, marked silenced.
CREATE TABLE alert_silences (
    name        text        NOT NULL,
    subject     text        NOT NULL,
    until       timestamptz NOT NULL,
    reason      text        NOT NULL,
    silenced_by text        NOT NULL,
    silenced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, subject)
);

-- The alerts page's history: alert_changed events are few among many, so a
-- partial index finds the latest ones without reading the trail.
CREATE INDEX audit_alert_changes ON audit (day DESC, seq DESC) WHERE kind = 'alert_changed';
