"""Integration tests against a real PostgreSQL."""
