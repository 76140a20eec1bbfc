-- A report's PDF is most often the one its CDA embeds (the HL7 volet's
-- level 1 document, or the CDA built around a bare PDF): stored again in
-- documents.pdf, it was 100 kB more written per report (WAL, TOAST) and read
-- by every send. From now on documents.pdf holds a PDF only when it is not
-- the CDA's own (an API client sent both); pdf_in_cda says the CDA has it.
-- Rows stored before keep their pdf (pdf_in_cda false).
ALTER TABLE documents ADD COLUMN pdf_in_cda boolean NOT NULL DEFAULT false;
