"""Masking of secrets for display: whole `SecretStr`s, URL passwords and key-like query parameters."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

__all__ = ["MASK", "mask_url", "mask_secret", "jsonable_masked"]

MASK = "**********"
_SHORT_MASK = "****"
# Query parameters that carry credentials, e.g. Helius's `?api-key=`.
_SENSITIVE_PARAM_PARTS = ("key", "token", "secret", "password", "passwd", "sig", "auth", "credential")


def _is_sensitive_param(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in _SENSITIVE_PARAM_PARTS)


def mask_url(url: str) -> str:
    """`postgresql://u:pw@h/db` → `postgresql://u:****@h/db`; credential query values → `****`."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return MASK  # unparseable: we cannot tell where the secret is, so hide everything
    netloc = parts.netloc
    if has_password:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:{_SHORT_MASK}@{hostport}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(_is_sensitive_param(name) for name, _ in pairs):
        query = urlencode([(n, _SHORT_MASK if _is_sensitive_param(n) else v) for n, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_secret(secret: SecretStr) -> str:
    """A secret URL keeps its shape (operators need the host); any other secret becomes stars."""
    raw = secret.get_secret_value()
    return mask_url(raw) if "://" in raw else MASK


def jsonable_masked(value: Any) -> Any:
    """Turn a `model_dump()` (python mode) into JSON-able data with every secret masked.

    Decimals become strings so thresholds keep their exact value.
    """
    if isinstance(value, SecretStr):
        return mask_secret(value)
    if isinstance(value, Mapping):
        return {str(key): jsonable_masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable_masked(item) for item in value]
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Enum):
        return jsonable_masked(value.value)
    return value
