-- Operator console: local users, sessions (browser, CLI and API tokens), and the
-- indexes that keep the flows page fast on a large store.

CREATE TABLE console_users (
    name              text        PRIMARY KEY,
    role              text        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash     text,                    -- argon2id (PHC string); NULL: cannot sign in with a password
    disabled          boolean     NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at   timestamptz,
    failed_sign_ins   integer     NOT NULL DEFAULT 0,   -- since failed_since; reset on success
    failed_since      timestamptz
);

-- A session is what a bearer of its token may do as its user. Only the SHA-256
-- of the token is stored, so a copy of this table signs nobody in.
--   browser: cookie, CSRF token, idle timeout and absolute lifetime
--   cli:     bearer token from POST /api/session, same lifetimes
--   api:     bearer token from `carebroker users token`, absolute lifetime only
CREATE TABLE console_sessions (
    id             uuid        PRIMARY KEY,
    token_sha256   bytea       NOT NULL UNIQUE,
    user_name      text        NOT NULL REFERENCES console_users (name) ON DELETE CASCADE,
    kind           text        NOT NULL CHECK (kind IN ('browser', 'cli', 'api')),
    csrf_token     text        NOT NULL,
    label          text        NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    idle_timeout   interval,                -- NULL: no idle timeout (API tokens)
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz
);
-- OpenID Connect sign-ins under way: state (hashed), nonce, PKCE verifier.
-- Single use, forgotten after 10 minutes (broker/console/oidc.py).
CREATE TABLE console_oidc_logins (
    state_sha256  bytea       PRIMARY KEY,
    nonce         text        NOT NULL,
    verifier      text        NOT NULL,
    next          text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX console_sessions_user ON console_sessions (user_name) WHERE revoked_at IS NULL;
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Flows and partners pages (broker/console/flows.py, partners.py). Each flows
-- query reads the last hour; these let it read only that range, from the index
-- alone where it can. The partial ones stay small: they hold only the rows
-- their page asks about.
CREATE INDEX messages_recent ON messages (received_at) INCLUDE (sender, status);
CREATE INDEX deliveries_delivered ON deliveries (delivered_at)
    INCLUDE (recipient, message_received_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX deliveries_failed ON deliveries (updated_at) INCLUDE (recipient, status)
    WHERE status IN ('failed', 'dead');
CREATE INDEX deliveries_queued ON deliveries (recipient, message_received_at)
    WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_dead ON deliveries (recipient) WHERE status = 'dead';
CREATE INDEX deliveries_last_delivered ON deliveries (recipient, delivered_at DESC)
    WHERE delivered_at IS NOT NULL;
CREATE INDEX deliveries_last_error ON deliveries (recipient, updated_at DESC)
    WHERE last_error IS NOT NULL;
