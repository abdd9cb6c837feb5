-- File intake (issue 16): files taken from a watched drop directory (HPRIM
-- Santé results). One row per file taken, whatever became of it: `accepted`
-- (its messages stored), `duplicate` (every message was already stored: the
-- same file again, or one re-read after a crash before it was moved) or
-- `refused` (kept as a rejected message with the reason). The file moves to
-- done/ or error/ only after this row and its messages are committed; the
-- original file stays there, carebroker never deletes it.
CREATE TABLE file_pickups (
    id           uuid        PRIMARY KEY,
    directory    text        NOT NULL,   -- the watched directory, as configured
    name         text        NOT NULL,   -- the file's name when it was taken
    sha256       text        NOT NULL,
    size         bigint      NOT NULL,
    format       text        NOT NULL,   -- hprim-sante
    sender       text,                   -- partner id; NULL when the file names none
    outcome      text        NOT NULL,   -- accepted | duplicate | refused
    reason       text,                   -- why refused: file, record, field (no values)
    message_ids  uuid[]      NOT NULL DEFAULT '{}',
    moved_to     text        NOT NULL,   -- done | error
    picked_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX file_pickups_file ON file_pickups (directory, sha256);
CREATE INDEX file_pickups_age ON file_pickups (picked_at);
