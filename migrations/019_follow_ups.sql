-- Issue #21: the follow-up jobs of a delivery that have not run yet, each
-- named by its kind and what makes it unique besides the delivery
-- ('ack_deadline:dsn', 'ack_deadline:read', 'delivery_fallback:unread'...).
-- The transaction that enqueues such a job adds its name, the one in which
-- the job completes removes it: while a name is there, a deadline or a
-- fallback may yet create a paper letter that prints the document, and the
-- retention job keeps it, reading this column and not the queue's tables.
ALTER TABLE deliveries ADD COLUMN follow_ups text[] NOT NULL DEFAULT '{}';

-- The follow-up jobs waiting or running when this migration runs, read once
-- from River's table (migrated before the application's, absent from a
-- database River never ran on).
DO $$
BEGIN
    IF to_regclass('river_job') IS NOT NULL THEN
        EXECUTE $sql$
            UPDATE deliveries d SET follow_ups = j.names
            FROM (SELECT (args->>'delivery_id')::bigint AS delivery_id,
                         array_agg(DISTINCT kind || ':' || coalesce(args->>'deadline', args->>'cause', '')) AS names
                  FROM river_job
                  WHERE kind IN ('ack_deadline', 'delivery_fallback')
                      AND state IN ('available', 'pending', 'running', 'retryable', 'scheduled')
                  GROUP BY 1) j
            WHERE d.id = j.delivery_id$sql$;
    END IF;
END $$;
