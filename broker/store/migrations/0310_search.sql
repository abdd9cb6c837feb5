-- Message search (issue 5, item 4; broker/store/search.py). The spine's
-- per-partition indexes already answer searches by control id, id, sender,
-- type, status and patient digest, each in time order. A search by recipient
-- reads deliveries in their messages' acceptance order, newest first, and
-- joins each to its message by primary key: this index gives that order, so
-- a page of a busy recipient's messages reads one page of index entries,
-- and a seldom-used recipient's few messages are found without a scan.
-- Its cost: like every index on deliveries, it takes an entry per row
-- version (status updates cannot be HOT updates: other indexes hold status).
CREATE INDEX deliveries_recipient_message
    ON deliveries (recipient, message_received_at DESC, message_id DESC);

-- Dead letters, failures and blocked deliveries, newest first: what operators
-- look for after an outage. They are few, so a partial index holds just them,
-- in the order a page reads them, and costs nothing on the usual statuses.
CREATE INDEX deliveries_in_trouble
    ON deliveries (message_received_at DESC, message_id DESC)
    WHERE status IN ('failed', 'dead', 'blocked');
