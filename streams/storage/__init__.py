"""PostgreSQL storage: migrations, the connection pool, an embedded server, and batched upserts.

Every function takes a connection (bare or pooled) as its first argument and raises only
`core.errors.DatabaseError` for database trouble. Writes are idempotent and sort their
keys, so replays and concurrent writers are safe.
"""

from streams.storage.candles import Candle, load_candles, upsert_candles
from streams.storage.checkpoints import (
    Checkpoint,
    SourceCursor,
    get_cursor,
    load_checkpoint,
    save_checkpoint,
    set_cursor,
)
from streams.storage.embedded import resolve_dsn, start_embedded, stop_embedded
from streams.storage.migrate import apply_migrations
from streams.storage.moments import (
    MomentCursor,
    SequencedMoment,
    get_moment,
    list_moments,
    moment_counts,
    moments_after_seq,
    upsert_moments,
)
from streams.storage.pool import Liveness, PoolMetrics, create_pool, health_check, pool_liveness, register_codecs
from streams.storage.transactions import trade_events_for_wallet, upsert_trade_events, upsert_transactions
from streams.storage.users import (
    Job,
    JobStatus,
    LinkNonce,
    WalletLink,
    claim_next_job,
    consume_link_nonce,
    count_active_jobs,
    create_job,
    create_link_nonce,
    get_job,
    get_link_nonce,
    insert_wallet_link,
    linked_wallets,
    list_wallet_links,
    requeue_stale_jobs,
    update_job_progress,
)
from streams.storage.wallets import (
    WalletSource,
    follow_token_accounts,
    followed_token_accounts,
    track_wallets,
    tracked_wallets,
)

__all__ = [
    "Job",
    "JobStatus",
    "LinkNonce",
    "Liveness",
    "WalletLink",
    "claim_next_job",
    "follow_token_accounts",
    "followed_token_accounts",
    "consume_link_nonce",
    "count_active_jobs",
    "create_job",
    "create_link_nonce",
    "get_job",
    "get_link_nonce",
    "insert_wallet_link",
    "linked_wallets",
    "list_wallet_links",
    "requeue_stale_jobs",
    "update_job_progress",
    "Candle",
    "Checkpoint",
    "MomentCursor",
    "PoolMetrics",
    "SequencedMoment",
    "SourceCursor",
    "WalletSource",
    "apply_migrations",
    "create_pool",
    "get_cursor",
    "get_moment",
    "health_check",
    "list_moments",
    "load_candles",
    "load_checkpoint",
    "moment_counts",
    "moments_after_seq",
    "pool_liveness",
    "register_codecs",
    "resolve_dsn",
    "save_checkpoint",
    "set_cursor",
    "start_embedded",
    "stop_embedded",
    "track_wallets",
    "tracked_wallets",
    "trade_events_for_wallet",
    "upsert_candles",
    "upsert_moments",
    "upsert_trade_events",
    "upsert_transactions",
]
