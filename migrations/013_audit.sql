-- The audit log traces access to patient data (audit package): the report
-- and the delivery an entry is about, and the IPP or INS a search or an
-- export was about, so that the journal finds a patient's entries.
ALTER TABLE audit_log
    ADD COLUMN report_id   bigint,
    ADD COLUMN delivery_id bigint,
    ADD COLUMN patient     text NOT NULL DEFAULT '';
CREATE INDEX audit_log_report_id_idx ON audit_log (report_id, id) WHERE report_id IS NOT NULL;
CREATE INDEX audit_log_patient_idx ON audit_log (patient, id) WHERE patient <> '';
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- Append-only, but for the retention purge: a transaction that sets
-- mssdispatch.audit_purge_days (audit.Purge) may delete the entries older
-- than that many days, never fewer than 183 (six months, the minimum of the
-- CNIL's recommendation on logging).
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keep_days int := nullif(current_setting('mssdispatch.audit_purge_days', true), '')::int;
BEGIN
    IF TG_OP = 'DELETE' AND keep_days >= 183 AND OLD.at < now() - make_interval(days => keep_days) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
