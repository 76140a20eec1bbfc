-- Every message received with a key (HL7: MSH-3/4/10; REST: the Idempotency-Key),
-- with the response its sender got, so that a retransmission gets the same one.
CREATE TABLE inbound_messages (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('hl7', 'json')),
    source              text NOT NULL CHECK (source IN ('mllp', 'api')),
    sending_application text NOT NULL,
    sending_facility    text NOT NULL,
    message_control_id  text NOT NULL,
    message_type        text NOT NULL,
    fingerprint         bytea NOT NULL,
    outcome             text NOT NULL CHECK (outcome IN ('accepted', 'rejected')),
    response            bytea NOT NULL,
    attempts            int NOT NULL DEFAULT 1,
    received_at         timestamptz NOT NULL DEFAULT now(),
    last_received_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, sending_application, sending_facility, message_control_id)
);

-- Messages refused (AE/AR, 4xx): kept whole, never dropped, for the dashboard.
CREATE TABLE quarantine (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('hl7', 'json')),
    source             text NOT NULL CHECK (source IN ('mllp', 'api')),
    inbound_id         bigint REFERENCES inbound_messages (id),
    message_control_id text NOT NULL DEFAULT '',
    reason             text NOT NULL,
    raw                bytea NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_received_at_idx ON quarantine (received_at);

ALTER TABLE reports
    DROP CONSTRAINT reports_sending_application_sending_facility_message_contro_key,
    ADD COLUMN inbound_id bigint REFERENCES inbound_messages (id),
    ADD COLUMN action text NOT NULL DEFAULT 'new' CHECK (action IN ('new', 'replace', 'delete')),
    ADD COLUMN parent_document_id text NOT NULL DEFAULT '',
    ADD COLUMN service text NOT NULL DEFAULT '',
    ADD COLUMN author jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN reply_to text NOT NULL DEFAULT '',
    ADD COLUMN flags jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN body_professional text NOT NULL DEFAULT '',
    ADD COLUMN body_patient text NOT NULL DEFAULT '',
    ADD COLUMN patient_ins_qualified boolean NOT NULL DEFAULT false,
    ADD COLUMN patient_address jsonb NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX reports_inbound_id_idx ON reports (inbound_id);

ALTER TABLE recipients
    ADD COLUMN kind text NOT NULL DEFAULT 'professional' CHECK (kind IN ('professional', 'organisation', 'patient')),
    ADD COLUMN finess text NOT NULL DEFAULT '',
    ADD COLUMN organisation text NOT NULL DEFAULT '';
