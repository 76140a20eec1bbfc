-- Where the reading of the BAL applicative's mailbox got to: the last UID
-- processed, valid while the mailbox keeps its UIDVALIDITY.
CREATE TABLE imap_checkpoints (
    mailbox      text PRIMARY KEY,
    uid_validity bigint NOT NULL,
    last_uid     bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Every message read from that mailbox: what it was (a DSN, an MDN, a human
-- reply, something else), the delivery it concerns when one was found, and
-- what it did. Unmatched and unknown ones are the dashboard's to show.
CREATE TABLE mail_notifications (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('dsn', 'mdn', 'reply', 'unknown')),
    message_id  text NOT NULL DEFAULT '',
    delivery_id bigint REFERENCES deliveries (id),
    outcome     text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_notifications_delivery_id_idx ON mail_notifications (delivery_id) WHERE delivery_id IS NOT NULL;
CREATE INDEX mail_notifications_unmatched_idx ON mail_notifications (received_at) WHERE delivery_id IS NULL;
