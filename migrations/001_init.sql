-- Reports received from the DPI, their document and the recipients it listed.
CREATE TABLE reports (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text NOT NULL CHECK (source IN ('mllp', 'api')),
    sending_application text NOT NULL DEFAULT '',
    sending_facility    text NOT NULL DEFAULT '',
    message_control_id  text NOT NULL,
    message_type        text NOT NULL,
    document_id         text NOT NULL,
    document_code       text NOT NULL DEFAULT '',
    document_title      text NOT NULL DEFAULT '',
    patient_family      text NOT NULL DEFAULT '',
    patient_given       text NOT NULL DEFAULT '',
    patient_birth_date  text NOT NULL DEFAULT '',
    patient_sex         text NOT NULL DEFAULT '',
    patient_ins         text NOT NULL DEFAULT '',
    patient_ins_oid     text NOT NULL DEFAULT '',
    patient_ipp         text NOT NULL DEFAULT '',
    status              text NOT NULL CHECK (status IN ('received', 'resolved')),
    received_at         timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (sending_application, sending_facility, message_control_id)
);
CREATE INDEX reports_document_id_idx ON reports (document_id);

CREATE TABLE documents (
    report_id bigint PRIMARY KEY REFERENCES reports (id) ON DELETE CASCADE,
    cda       bytea NOT NULL,
    pdf       bytea
);

CREATE TABLE recipients (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id   bigint NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    position    int NOT NULL,
    role        text NOT NULL,
    national_id text NOT NULL DEFAULT '',
    rpps        text NOT NULL DEFAULT '',
    family      text NOT NULL DEFAULT '',
    given       text NOT NULL DEFAULT '',
    address     text NOT NULL DEFAULT '',
    UNIQUE (report_id, position)
);

-- One delivery per (recipient, channel), with the reason for its channel.
CREATE TABLE deliveries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id    bigint NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    recipient_id bigint NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    channel      text NOT NULL CHECK (channel IN ('mssante', 'paper')),
    status       text NOT NULL CHECK (status IN ('review', 'scheduled', 'queued', 'sent',
                     'delivered', 'read', 'failed', 'paper_pending', 'paper_sent',
                     'cancelled', 'superseded')),
    address      text NOT NULL DEFAULT '',
    reason       text NOT NULL,
    reason_text  text NOT NULL,
    message_id   text UNIQUE,
    last_error   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    UNIQUE (recipient_id, channel)
);
CREATE INDEX deliveries_report_id_idx ON deliveries (report_id);

-- The national directory (Annuaire Santé MSSanté extraction), one row per mailbox and person.
CREATE TABLE directory_entries (
    address         text NOT NULL,
    national_id     text NOT NULL,
    box_type        text NOT NULL,
    last_name       text NOT NULL DEFAULT '',
    first_name      text NOT NULL DEFAULT '',
    profession      text NOT NULL DEFAULT '',
    structure_id    text NOT NULL DEFAULT '',
    org_name        text NOT NULL DEFAULT '',
    dematerialised  boolean NOT NULL,
    postal_address  jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (address, national_id)
);
CREATE INDEX directory_entries_national_id_idx ON directory_entries (national_id) WHERE national_id <> '';

-- The MSSanté trust space: domains of the whitelist.
CREATE TABLE trust_domains (
    domain text PRIMARY KEY
);

-- One row per import of the directory or the whitelist.
CREATE TABLE directory_imports (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('directory', 'whitelist')),
    source      text NOT NULL,
    rows        bigint NOT NULL,
    skipped     bigint NOT NULL,
    added       bigint NOT NULL,
    removed     bigint NOT NULL,
    changed     bigint NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now()
);
