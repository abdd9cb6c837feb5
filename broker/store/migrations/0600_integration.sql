-- Integration (issues 3, 4, 5, 6): enhanced-mode application ACKs travel as
-- deliveries to the sender, and every delivery carries the trace it belongs to.

-- A delivery is the message for a recipient (`message`) or the application
-- ACK owed to the message's sender (`app_ack`): one of each per (message,
-- partner) at most, so a sender that is also a recipient (a route with
-- `include_sender`) gets both. `trace` is the W3C context of the router's span,
-- so the delivery attempt joins the message's trace.
ALTER TABLE deliveries
    ADD COLUMN kind  text  NOT NULL DEFAULT 'message',
    ADD COLUMN trace jsonb;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_message_id_recipient_key;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_message_recipient_kind
    UNIQUE (message_id, recipient, kind);

-- Application ACKs a sender asked for (MSH-16 AL, ER or SU in enhanced mode):
-- `waiting` until every delivery of the message is final, then `queued` (a
-- delivery of kind app_ack carries it), `not_due` (MSH-16 did not ask for this
-- outcome) or `unsendable` (the sender has no endpoint an HL7 v2 ACK can go to).
-- `header` is the message's MSH segment, which the ACK copies and swaps; it
-- names applications, facilities and the control id, never the patient.
CREATE TABLE app_acks (
    message_id           uuid        PRIMARY KEY,
    message_received_at  timestamptz NOT NULL,
    sender               text        NOT NULL,
    condition            text        NOT NULL,           -- MSH-16: AL | ER | SU
    header               text        NOT NULL,
    codec                text        NOT NULL,           -- Python codec of the message
    ordering_key         text        NOT NULL,
    trace                jsonb,
    status               text        NOT NULL DEFAULT 'waiting',
    code                 text,                           -- MSA-1 decided: AA | AE | AR
    reason               text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    decided_at           timestamptz
);
CREATE INDEX app_acks_waiting ON app_acks (message_received_at) WHERE status = 'waiting';
