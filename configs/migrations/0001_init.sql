-- Pipeline tables: chain data, moments, prices, and the state that makes restarts lossless.
-- Money and token amounts are NUMERIC (exact); event times are TIMESTAMPTZ.

CREATE TABLE transactions (
    signature    TEXT PRIMARY KEY,
    slot         BIGINT NOT NULL,
    block_time   TIMESTAMPTZ,
    fee_payer    TEXT NOT NULL,
    wallets      TEXT[] NOT NULL,                 -- signers
    failed       BOOLEAN NOT NULL DEFAULT false,
    fee_lamports BIGINT NOT NULL DEFAULT 0,
    program      TEXT,
    raw          JSONB NOT NULL,
    inserted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX transactions_fee_payer_slot_idx ON transactions (fee_payer, slot DESC);

CREATE TABLE trade_events (
    signature    TEXT NOT NULL REFERENCES transactions (signature) ON DELETE CASCADE,
    ix           INTEGER NOT NULL,
    slot         BIGINT NOT NULL,
    block_time   TIMESTAMPTZ,
    wallet       TEXT NOT NULL,
    side         TEXT NOT NULL CHECK (side IN ('BUY', 'SELL', 'SWAP')),
    mint         TEXT NOT NULL,
    amount       NUMERIC NOT NULL,
    quote_mint   TEXT NOT NULL,
    quote_amount NUMERIC NOT NULL,
    price_usd    NUMERIC,
    program      TEXT,
    fee_lamports BIGINT NOT NULL DEFAULT 0,
    inserted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (signature, ix)
);
CREATE INDEX trade_events_wallet_slot_idx ON trade_events (wallet, slot);
CREATE INDEX trade_events_mint_block_time_idx ON trade_events (mint, block_time);

-- `seq` is taken from this sequence on every insert and on every real change, so SSE
-- clients resume with Last-Event-ID = seq and pagination by seq never skips an update.
CREATE SEQUENCE moments_seq;

CREATE TABLE moments (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('S2E', 'BHD', 'BAD_ROUTE', 'IDLE_YIELD', 'RUG')),
    wallet       TEXT NOT NULL,
    mint         TEXT NOT NULL,
    severity     NUMERIC NOT NULL CHECK (severity >= 0 AND severity <= 1),
    pct          NUMERIC NOT NULL,
    usd_value    NUMERIC NOT NULL CHECK (usd_value >= 0),
    window_start TIMESTAMPTZ NOT NULL,
    window_end   TIMESTAMPTZ NOT NULL,
    sig_ref      TEXT NOT NULL,
    slot_ref     BIGINT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('open', 'final')),
    detected_at  TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    explain      JSONB NOT NULL DEFAULT '{}'::jsonb,
    inserted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    seq          BIGINT NOT NULL DEFAULT nextval('moments_seq')
);
ALTER SEQUENCE moments_seq OWNED BY moments.seq;
CREATE UNIQUE INDEX moments_seq_idx ON moments (seq);
CREATE INDEX moments_wallet_detected_idx ON moments (wallet, detected_at DESC, id DESC);
CREATE INDEX moments_detected_idx ON moments (detected_at DESC, id DESC);
CREATE INDEX moments_wallet_severity_idx ON moments (wallet, severity DESC);

-- Listeners (the SSE relay) get {"id", "seq"} on every insert or real change; NOTIFY is
-- delivered at commit, so a rolled-back upsert announces nothing.
CREATE FUNCTION notify_moment() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('oof_moments', json_build_object('id', NEW.id, 'seq', NEW.seq)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER moments_notify
    AFTER INSERT OR UPDATE ON moments
    FOR EACH ROW EXECUTE FUNCTION notify_moment();

-- One-minute OHLCV per mint. Rows are merged from partial candles: first/last slot decide
-- which partial's open and close win, so flushes may arrive in any order.
CREATE TABLE price_candles (
    mint       TEXT NOT NULL,
    minute     TIMESTAMPTZ NOT NULL CHECK (date_trunc('minute', minute) = minute),
    open       NUMERIC NOT NULL,
    high       NUMERIC NOT NULL,
    low        NUMERIC NOT NULL,
    close      NUMERIC NOT NULL,
    volume     NUMERIC NOT NULL DEFAULT 0,
    ticks      INTEGER NOT NULL DEFAULT 0,
    first_slot BIGINT NOT NULL,
    last_slot  BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (mint, minute)
);

-- Keyed by shard count too: after re-sharding, the old layout's checkpoints stay readable.
CREATE TABLE shard_checkpoints (
    shard_count    INTEGER NOT NULL CHECK (shard_count > 0),
    shard          INTEGER NOT NULL CHECK (shard >= 0 AND shard < shard_count),
    snapshot       BYTEA NOT NULL,
    last_slot      BIGINT NOT NULL,
    last_signature TEXT,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (shard_count, shard)
);

-- Per-wallet position of the live source, for gap backfill after a reconnect.
CREATE TABLE source_cursors (
    wallet         TEXT PRIMARY KEY,
    last_signature TEXT NOT NULL,
    last_slot      BIGINT NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
