-- Every change of a delivery's status, append-only: what happened, when, why
-- and who did it (the system, a CME rule, a user).
CREATE TABLE delivery_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES deliveries (id),
    from_status text,  -- NULL when the delivery is created
    to_status   text NOT NULL,
    event       text NOT NULL,
    actor_kind  text NOT NULL CHECK (actor_kind IN ('system', 'rule', 'user')),
    actor       text NOT NULL DEFAULT '',
    detail      text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_events_delivery_id_idx ON delivery_events (delivery_id, id);

CREATE FUNCTION delivery_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'delivery_events is append-only';
END $$;
CREATE TRIGGER delivery_events_append_only BEFORE UPDATE OR DELETE ON delivery_events
    FOR EACH ROW EXECUTE FUNCTION delivery_events_append_only();

-- The rule that decided a delivery and the fallback policy it carries, the
-- steps of its sending, and its acknowledgements.
ALTER TABLE deliveries
    ADD COLUMN rule_name       text NOT NULL DEFAULT '',
    ADD COLUMN rule_version    int NOT NULL DEFAULT 0,
    ADD COLUMN policy          jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN scheduled_for   timestamptz,
    ADD COLUMN sending_at      timestamptz,
    ADD COLUMN send_attempts   int NOT NULL DEFAULT 0,
    ADD COLUMN delivered_at    timestamptz,
    ADD COLUMN read_at         timestamptz,
    ADD COLUMN fallback_of     bigint REFERENCES deliveries (id),
    ADD COLUMN attention       text NOT NULL DEFAULT '';  -- e.g. 'unread': a secretary should look
CREATE INDEX deliveries_status_idx ON deliveries (status, updated_at);

-- The CME's dispatch rules, one row per version; the newest is in force.
CREATE TABLE rule_sets (
    version    int PRIMARY KEY,
    rules      jsonb NOT NULL,
    source     text NOT NULL,  -- the YAML as written by its author
    comment    text NOT NULL DEFAULT '',
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Operators (recipient domains) that answered a temporary failure: their
-- sends wait until blocked_until, the others keep flowing.
CREATE TABLE mail_domains (
    domain        text PRIMARY KEY,
    blocked_until timestamptz NOT NULL,
    failures      int NOT NULL DEFAULT 0,
    last_error    text NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- What the rules match on, from the CDA header.
ALTER TABLE reports
    ADD COLUMN confidentiality text NOT NULL DEFAULT '';

-- Retention: the document's bytes are purged, the report and its history stay.
ALTER TABLE documents
    ADD COLUMN purged_at timestamptz;
ALTER TABLE quarantine
    ADD COLUMN purged_at timestamptz;
