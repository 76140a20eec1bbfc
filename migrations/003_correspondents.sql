-- Search keys of the national directory, computed at import (correspondents.SearchKey:
-- lower case, no accents, single spaces), for the type-ahead search. In the "C" collation,
-- so that one plain index serves both the prefix LIKE and the ORDER BY.
ALTER TABLE directory_entries
    ADD COLUMN rpps            text NOT NULL DEFAULT '',
    ADD COLUMN profession_code text NOT NULL DEFAULT '',
    ADD COLUMN specialty       text NOT NULL DEFAULT '',
    ADD COLUMN search_name     text COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN search_city     text COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX directory_entries_search_name_idx ON directory_entries (search_name);
CREATE INDEX directory_entries_search_city_idx ON directory_entries (search_city);
CREATE INDEX directory_entries_structure_id_idx ON directory_entries (structure_id)
    WHERE box_type IN ('ORG', 'APP') AND structure_id <> '';

-- Every import attempt, failed ones included (the previous data then stays).
ALTER TABLE directory_imports
    ADD COLUMN status text NOT NULL DEFAULT 'succeeded' CHECK (status IN ('succeeded', 'failed')),
    ADD COLUMN error  text NOT NULL DEFAULT '',
    ADD COLUMN trigger text NOT NULL DEFAULT 'command' CHECK (trigger IN ('command', 'schedule', 'api'));
CREATE INDEX directory_imports_kind_idx ON directory_imports (kind, imported_at DESC);

-- The hospital's own directory: correspondents it knows, overriding the
-- national entry of the same person (national id) or organisation (FINESS).
CREATE TABLE local_correspondents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    national_id     text NOT NULL DEFAULT '',
    finess          text NOT NULL DEFAULT '',
    family          text NOT NULL DEFAULT '',
    given           text NOT NULL DEFAULT '',
    organisation    text NOT NULL DEFAULT '',
    mssante_address text NOT NULL DEFAULT '',
    postal_address  jsonb NOT NULL DEFAULT '{}',
    preference      text NOT NULL DEFAULT 'directory'
                    CHECK (preference IN ('directory', 'electronic', 'paper', 'both')),
    note            text NOT NULL DEFAULT '',
    search_name     text COLLATE "C" NOT NULL DEFAULT '',
    updated_by      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (national_id <> '' OR finess <> '')
);
CREATE UNIQUE INDEX local_correspondents_national_id_idx ON local_correspondents (national_id) WHERE national_id <> '';
CREATE UNIQUE INDEX local_correspondents_finess_idx ON local_correspondents (finess) WHERE national_id = '';
CREATE INDEX local_correspondents_search_name_idx ON local_correspondents (search_name);

-- Where a paper delivery is posted, and who it is for.
ALTER TABLE deliveries
    ADD COLUMN recipient_name text NOT NULL DEFAULT '',
    ADD COLUMN postal_address jsonb NOT NULL DEFAULT '{}';

-- The postal address a DPI may give for a correspondent (PRT-14).
ALTER TABLE recipients
    ADD COLUMN postal_address jsonb NOT NULL DEFAULT '{}';
