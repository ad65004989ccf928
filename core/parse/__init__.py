"""Transaction parsing: `getTransaction` JSON (json / jsonParsed / base64) → flows and TradeEvents."""

from core.parse.transaction import invoked_programs, parse_transaction, unwrap_result

__all__ = ["parse_transaction", "unwrap_result", "invoked_programs"]
