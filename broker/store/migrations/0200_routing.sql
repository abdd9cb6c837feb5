-- Routing and delivery (issue 4): the partner directory in PostgreSQL, patient
-- oppositions, and what the delivery state machine needs beyond the spine's
-- `deliveries` table.

-- Every version of the partner directory ever loaded; the highest version is
-- the current one. Processes reload it when `carebroker partners reload` (or a
-- SIGHUP) stores a new version and NOTIFYs `carebroker_partners`.
CREATE TABLE partner_directory (
    version     bigserial   PRIMARY KEY,
    digest      text        NOT NULL,          -- sha256 of the validated document
    source      text        NOT NULL,          -- the file it was read from
    document    jsonb       NOT NULL,          -- the validated DirectoryFile
    summary     jsonb       NOT NULL,          -- what changed from the previous version
    loaded_by   text        NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now()
);

-- Patients who object to sharing (CSP L1110-4): deliveries about them are
-- blocked. Keyed by the pseudonymous digest of one identifier, the same digest
-- the envelope carries, so no identifier is stored in clear.
CREATE TABLE consent_oppositions (
    digest      text        PRIMARY KEY,
    authority   text        NOT NULL,          -- assigning authority (OID or namespace), in clear
    id_type     text        NOT NULL DEFAULT '',
    note        text        NOT NULL DEFAULT '',  -- operator's reference (no patient data)
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE deliveries
    ADD COLUMN control_id   text    NOT NULL DEFAULT '',    -- MSH-10 / Bundle.identifier sent
    ADD COLUMN reasons      jsonb   NOT NULL DEFAULT '[]',  -- message fields that chose the recipient
    ADD COLUMN flags        text[]  NOT NULL DEFAULT '{}',  -- ins_stripped, chars_escaped, ...
    ADD COLUMN content_type text    NOT NULL DEFAULT '',
    ADD COLUMN ack_code     text,                            -- MSA-1, HTTP status, mailbox
    ADD COLUMN posted_at    timestamptz,                     -- mailbox: waiting for the partner
    ADD COLUMN fetched_at   timestamptz,                     -- mailbox: fetched by the partner
    ADD COLUMN flagged_at   timestamptz,                     -- mailbox: unacknowledged too long
    ADD COLUMN replays      integer NOT NULL DEFAULT 0,
    ADD COLUMN replayed_at  timestamptz;                     -- max_age_s counts from here

-- Lane heads are found with the spine's deliveries_pending index; every
-- further index on deliveries is paid on each status change, so only the
-- mailbox (a partner's waiting messages, in acceptance order) gets one.
CREATE INDEX deliveries_mailbox ON deliveries (recipient, message_received_at, message_id)
    WHERE status = 'pending' AND posted_at IS NOT NULL;
