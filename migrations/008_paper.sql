-- The paper channel: letters are printed in batches, one per day and
-- service, each a PDF (a summary sheet, then every letter: cover page in the
-- window envelope's layout and the report's pages) that the secretaries
-- print and mark posted, or that a postal service's sink takes.
CREATE TABLE paper_batches (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    day        date NOT NULL,
    service    text NOT NULL DEFAULT '',
    status     text NOT NULL CHECK (status IN ('ready', 'submitted', 'posted')),
    sink       text NOT NULL,
    letters    int NOT NULL,
    pages      int NOT NULL,
    pdf        bytea,  -- NULL once purged
    created_at timestamptz NOT NULL DEFAULT now(),
    posted_at  timestamptz,
    posted_by  text NOT NULL DEFAULT ''
);
CREATE INDEX paper_batches_created_at_idx ON paper_batches (created_at DESC);

-- What each batch holds, in print order.
CREATE TABLE paper_batch_letters (
    batch_id    bigint NOT NULL REFERENCES paper_batches (id),
    delivery_id bigint NOT NULL REFERENCES deliveries (id),
    position    int NOT NULL,
    pages       int NOT NULL,
    PRIMARY KEY (batch_id, delivery_id)
);
CREATE INDEX paper_batch_letters_delivery_idx ON paper_batch_letters (delivery_id);

-- The batch a letter to print is in; cleared when it leaves paper_pending
-- other than posted (held, returned, cancelled), so that it is printed again.
ALTER TABLE deliveries
    ADD COLUMN paper_batch_id bigint REFERENCES paper_batches (id);
CREATE INDEX deliveries_unbatched_idx ON deliveries (service, id) WHERE status = 'paper_pending' AND paper_batch_id IS NULL;
