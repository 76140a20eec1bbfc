-- An ORU^R01 of the ANS volet may carry the same report twice, as CDA level 1
-- and level 3, each with its own id: a report has one or two documents.
-- Each document row now carries the id a replacement, a deletion or a
-- resend names, its parent for a replacement, and the SHA-256 of its CDA,
-- by which a document sent again is recognised (same id, same bytes).
ALTER TABLE documents
    ADD COLUMN position int NOT NULL DEFAULT 1 CHECK (position IN (1, 2)),
    ADD COLUMN document_id text NOT NULL DEFAULT '',
    ADD COLUMN parent_document_id text NOT NULL DEFAULT '',
    ADD COLUMN cda_sha256 bytea;
UPDATE documents doc
    SET document_id = r.document_id, parent_document_id = r.parent_document_id,
        cda_sha256 = CASE WHEN length(doc.cda) > 0 THEN sha256(doc.cda) END
    FROM reports r WHERE r.id = doc.report_id;
ALTER TABLE documents DROP CONSTRAINT documents_pkey;
ALTER TABLE documents ADD PRIMARY KEY (report_id, position);
CREATE INDEX documents_document_id_idx ON documents (document_id);

-- The receiving application and facility the DPI named (MSH-5, MSH-6): the
-- business acknowledgements come back from them (their MSH-3, MSH-4).
ALTER TABLE reports
    ADD COLUMN receiving_application text NOT NULL DEFAULT '',
    ADD COLUMN receiving_facility text NOT NULL DEFAULT '';

-- What happened to a report as a whole, beside its deliveries' events: the
-- warnings of its intake (an optional field ignored), the DPI sending its
-- document again. Shown in the report's history.
CREATE TABLE report_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id bigint NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    event     text NOT NULL,
    detail    text NOT NULL DEFAULT '',
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX report_events_report_id_idx ON report_events (report_id, id);
