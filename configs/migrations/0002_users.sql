-- User-facing tables: which wallets are watched and why, analyze jobs, wallet ownership.

CREATE TABLE tracked_wallets (
    wallet   TEXT PRIMARY KEY,
    source   TEXT NOT NULL CHECK (source IN ('config', 'linked', 'analyze')),
    user_id  TEXT,
    added_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tracked_wallets_user_idx ON tracked_wallets (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE analyze_jobs (
    id         TEXT PRIMARY KEY,                  -- ULID
    user_id    TEXT NOT NULL,
    wallets    TEXT[] NOT NULL,
    status     TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress   JSONB NOT NULL DEFAULT '{}'::jsonb,
    error      TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX analyze_jobs_user_created_idx ON analyze_jobs (user_id, created_at DESC);

CREATE TABLE wallet_links (
    user_id   TEXT NOT NULL,
    wallet    TEXT NOT NULL,
    linked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, wallet)
);
CREATE INDEX wallet_links_wallet_idx ON wallet_links (wallet);

-- A nonce is single-use: `used_at` is set in the same transaction that creates the link.
CREATE TABLE link_nonces (
    nonce      TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    wallet     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX link_nonces_expires_idx ON link_nonces (expires_at) WHERE used_at IS NULL;
