-- Login throttling per (account, client address) (auth/throttle.go): the
-- rows of login_failures are now keyed 'pair:<username>|<address>',
-- 'user:<username>' and 'ip:<address>'. The addresses from which each account
-- logged in successfully exempt it from the delay of an address that fails
-- on many accounts: a colleague's spray from a shared address never keeps a
-- user out of her own account. Rows older than 90 days are purged.
CREATE TABLE login_known_addresses (
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address       text NOT NULL,
    last_login_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, address)
);
CREATE INDEX login_known_addresses_last_login_at_idx ON login_known_addresses (last_login_at);
