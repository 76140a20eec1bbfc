-- Issue #20: a quarantine a secretary can act on. Each refused message says
-- where it came from (MSH-3 and MSH-4: sending_application and
-- sending_facility, copied from its key when it had one) and, as far as the
-- intake could read them, whom and what it is about (patient, document: patient
-- data, shown as the reason is). partial is true when raw holds only the head
-- of a message over the size limit (it cannot be processed again).
--
-- status says where it stands: open (refused, nobody has dealt with it),
-- accepted (processed again and accepted: report_id is its report), dismissed
-- (set aside by acted_by, note saying why). acted_by and acted_at are the last
-- user who processed it again or set it aside, and when: on an open message,
-- a reprocessing that was refused again.
ALTER TABLE quarantine
    ADD COLUMN sending_application text NOT NULL DEFAULT '',
    ADD COLUMN sending_facility    text NOT NULL DEFAULT '',
    ADD COLUMN patient             text NOT NULL DEFAULT '',
    ADD COLUMN document            text NOT NULL DEFAULT '',
    ADD COLUMN partial             boolean NOT NULL DEFAULT false,
    ADD COLUMN status              text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'dismissed')),
    ADD COLUMN report_id           bigint REFERENCES reports (id),
    ADD COLUMN acted_by            text NOT NULL DEFAULT '',
    ADD COLUMN acted_at            timestamptz,
    ADD COLUMN note                text NOT NULL DEFAULT '';

UPDATE quarantine q SET sending_application = m.sending_application, sending_facility = m.sending_facility
    FROM inbound_messages m WHERE m.id = q.inbound_id;
UPDATE quarantine SET partial = true
    WHERE reason LIKE 'le message (% octets) dépasse la taille que le service accepte';
