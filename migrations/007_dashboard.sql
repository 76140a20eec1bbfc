-- The secretaries' dashboard: search keys (correspondents.SearchKey of the
-- names, written by the service; the backfill below only lower-cases, which
-- misses accents of rows received before this version) and the indexes
-- behind the worklists and the keyset-paginated search of "Tous les envois".
ALTER TABLE reports
    ADD COLUMN patient_key text COLLATE "C" NOT NULL DEFAULT '';
UPDATE reports SET patient_key = lower(trim(both ' ' FROM patient_family || ' ' || patient_given));
CREATE INDEX reports_patient_key_idx ON reports (patient_key);
CREATE INDEX reports_patient_ipp_idx ON reports (patient_ipp) WHERE patient_ipp <> '';
CREATE INDEX reports_patient_ins_idx ON reports (patient_ins) WHERE patient_ins <> '';

ALTER TABLE recipients
    ADD COLUMN name_key text COLLATE "C" NOT NULL DEFAULT '';
UPDATE recipients SET name_key = lower(trim(both ' ' FROM family || ' ' || given || ' ' || organisation));
CREATE INDEX recipients_name_key_idx ON recipients (name_key);
CREATE INDEX recipients_rpps_idx ON recipients (rpps) WHERE rpps <> '';

-- Worklists: each status newest first; the "Échecs" list also holds the
-- deliveries flagged for attention (unread, a reply). A delivery carries its
-- report's service, so that a secretary's worklists and counts (limited to
-- her services) read one table.
ALTER TABLE deliveries
    ADD COLUMN service text NOT NULL DEFAULT '';
UPDATE deliveries d SET service = r.service FROM reports r WHERE r.id = d.report_id AND r.service <> '';
CREATE INDEX deliveries_status_id_idx ON deliveries (status, id DESC);
CREATE INDEX deliveries_status_service_idx ON deliveries (status, service);
CREATE INDEX deliveries_attention_idx ON deliveries (id DESC) WHERE attention <> '';
CREATE INDEX deliveries_created_at_idx ON deliveries (created_at);
CREATE INDEX deliveries_address_idx ON deliveries (lower(address) text_pattern_ops) WHERE address <> '';
