-- Strangers at the HTTP edge (issue 13): sign-in throttling and the record of
-- unauthenticated refusals. Neither keeps what was sent: no body, no password,
-- no typed user name in clear.

-- Failed (or under way) sign-ins per key: the HMAC of a user name or of a client
-- address (broker/console/throttle.py). Every attempt is counted when it starts
-- and forgiven when it succeeds, so concurrent guesses cannot all slip through.
CREATE TABLE sign_in_throttle (
    key           text        PRIMARY KEY,
    failures      integer     NOT NULL,
    window_start  timestamptz NOT NULL,   -- the first failure counted
    last_at       timestamptz NOT NULL    -- the last attempt counted
);
CREATE INDEX sign_in_throttle_last_at ON sign_in_throttle (last_at);

-- Requests refused before anyone was identified (no or unknown credentials, a
-- throttled sign-in), aggregated per client address, channel, reason and
-- minute: a flood adds at most one row per address and minute. Sizes are the
-- declared ones; bodies are never read for these, let alone kept.
CREATE TABLE stranger_refusals (
    minute    timestamptz NOT NULL,
    address   text        NOT NULL,       -- '*': beyond the addresses kept per minute
    channel   text        NOT NULL,       -- fhir | console | mailbox
    reason    text        NOT NULL,
    requests  integer     NOT NULL,
    bytes     bigint      NOT NULL,
    first_at  timestamptz NOT NULL,
    last_at   timestamptz NOT NULL,
    PRIMARY KEY (minute, address, channel, reason)
);
CREATE INDEX stranger_refusals_last_at ON stranger_refusals (last_at);
