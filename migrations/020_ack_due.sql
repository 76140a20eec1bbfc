-- Issue #22: the next acknowledgement deadline of an email sent, on its
-- delivery, swept by the ack_watchdog job every minute, instead of one River
-- job per deadline and email (two job rows, their indexes and a follow-up
-- name written with each email sent). Set with the status sent, from the
-- delivery's policy: the earlier of no_dsn_hours and unread_hours (0 is off);
-- the sweep enqueues the ack_deadline job of each deadline passed that
-- still applies and moves the column on to the next one, or clears it.
-- While it is set, a deadline may yet create a paper letter: the retention
-- job keeps the document.
ALTER TABLE deliveries ADD COLUMN ack_due_at timestamptz;
CREATE INDEX deliveries_ack_due_idx ON deliveries (ack_due_at) WHERE ack_due_at IS NOT NULL;

-- The emails sent before, still waiting for an acknowledgement: their first
-- deadline. One that passed already has its ack_deadline job (enqueued with
-- the email, or by the watchdog): the sweep's is then skipped as a duplicate,
-- or finds the deadline applied.
UPDATE deliveries SET ack_due_at = LEAST(
        CASE WHEN status = 'sent' AND (policy->>'no_dsn_hours')::int > 0
            THEN sent_at + make_interval(hours => (policy->>'no_dsn_hours')::int) END,
        CASE WHEN read_at IS NULL AND attention = '' AND (policy->>'unread_hours')::int > 0
            THEN sent_at + make_interval(hours => (policy->>'unread_hours')::int) END)
WHERE status IN ('sent', 'delivered') AND sent_at IS NOT NULL;
