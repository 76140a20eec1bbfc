-- Issue #19: a refused message's reason repeats its values (patient data),
-- so the quarantine shows it only to the users who see the message's
-- service; the others see what the message is and where it failed, without
-- its values. service is the care unit the message names, read as a
-- report's ('' when it could not be read: then only the users who see every
-- service see the reason); error_code and error_location are the ERR-3 code
-- and ERR-2 location of the refusal ("PID^1^3"), or the JSON field of a
-- REST request's.
ALTER TABLE quarantine
    ADD COLUMN service        text NOT NULL DEFAULT '',
    ADD COLUMN message_type   text NOT NULL DEFAULT '',
    ADD COLUMN error_code     int NOT NULL DEFAULT 0,
    ADD COLUMN error_location text NOT NULL DEFAULT '';
