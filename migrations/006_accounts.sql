-- The dashboard's users: local accounts with an Argon2id password hash (PHC
-- string), or later accounts of an external identity provider (OIDC, e.g. Pro
-- Santé Connect: source is its issuer, external_subject its subject, no
-- password here).
CREATE TABLE users (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username         text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9._-]{2,64}$'),
    display_name     text NOT NULL DEFAULT '',
    password_hash    text,  -- NULL for an account of an external identity provider
    role             text NOT NULL CHECK (role IN ('secretary', 'cme', 'admin')),
    services         text[] NOT NULL DEFAULT '{}',  -- the services whose deliveries the user sees; empty: all
    source           text NOT NULL DEFAULT 'local',
    external_subject text,
    disabled         boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    last_login_at    timestamptz
);
CREATE UNIQUE INDEX users_external_subject_idx ON users (source, external_subject) WHERE external_subject IS NOT NULL;

-- Logged-in browsers. The cookie holds a random token; only its SHA-256 is
-- stored, so that reading this table does not give sessions away.
CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    client_ip    text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Failed logins (and attempts being checked), for the rate limit shared by
-- every instance: key is 'user:<username>' or 'ip:<address or IPv6 /64>'.
-- Rows older than the limit's window are pruned.
CREATE TABLE login_failures (
    id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key text NOT NULL,
    at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_key_idx ON login_failures (key, at);
CREATE INDEX login_failures_at_idx ON login_failures (at);

-- Who did what, append-only: logins, user management, and the dashboard's
-- changes (rules, correspondents, deliveries). actor is a username or
-- 'system'; object names what was acted on, e.g. 'delivery:123', 'user:alice'.
CREATE TABLE audit_log (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL,
    action text NOT NULL CHECK (action <> ''),
    object text NOT NULL DEFAULT '',
    detail text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
