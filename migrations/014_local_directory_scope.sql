-- A local correspondent changes where every service's letters go: only the
-- admins, and the users an admin grants it (users.grants 'correspondents'),
-- may change the local directory; the others propose a change, applied when
-- one of them approves it (correspondents/proposals.go).
ALTER TABLE users ADD COLUMN grants text[] NOT NULL DEFAULT '{}';

CREATE TABLE local_correspondent_proposals (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The correspondent it changes; NULL for a new one.
    correspondent_id bigint REFERENCES local_correspondents (id) ON DELETE CASCADE,
    -- The correspondent as proposed (correspondents.LocalCorrespondent).
    proposed         jsonb NOT NULL,
    why              text NOT NULL DEFAULT '',
    proposed_by      text NOT NULL,
    proposed_at      timestamptz NOT NULL DEFAULT now(),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'applied', 'rejected')),
    decided_by       text NOT NULL DEFAULT '',
    decided_at       timestamptz,
    decision         text NOT NULL DEFAULT ''
);
CREATE INDEX local_correspondent_proposals_status_idx ON local_correspondent_proposals (status, id);
