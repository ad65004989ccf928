"""Composition root: CLI, Ray Serve deployments, auth, rate limits."""
