"""Adapters to the outside world: Solana sources and PostgreSQL storage."""
