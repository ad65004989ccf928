-- Token accounts of watched wallets that the live sources follow (streams.sources._follow):
-- a transfer into an existing token account names the account, never its owner, so the
-- source subscribes the account too. Kept so a restart follows them from the start.
CREATE TABLE followed_token_accounts (
    account    TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    mint       TEXT NOT NULL,
    since_slot BIGINT NOT NULL,  -- first seen here: backfilled from this slot when it has no cursor
    found_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX followed_token_accounts_owner ON followed_token_accounts (owner);
