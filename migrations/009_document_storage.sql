-- The documents' bytes are PDFs, already compressed, and CDAs that are
-- mostly the base64 of those PDFs. pglz, PostgreSQL's default TOAST
-- compression, spent about 17 ms an intake compressing them by a few per
-- cent (pg_stat_statements, the load test's reports with a 100 KiB PDF), as
-- much CPU as the service's own work on the report. The PDFs are stored
-- uncompressed; the CDAs are compressed with lz4, fast, which still shrinks
-- the XML of a structured (level 3) document, where the server has it
-- (PostgreSQL built without lz4 keeps pglz for them).
ALTER TABLE documents ALTER COLUMN pdf SET STORAGE EXTERNAL;
ALTER TABLE paper_batches ALTER COLUMN pdf SET STORAGE EXTERNAL;
DO $$
BEGIN
    ALTER TABLE documents ALTER COLUMN cda SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no lz4: documents.cda stays compressed with pglz';
END
$$;
