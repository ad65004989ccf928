"""Where rendered cards live: a tiny object-store protocol, a local directory, and S3.

Keys are relative, `/`-separated paths (`cards/moment/<id>/<version>.png`). Stores are
write-once by convention: a changed moment gets a new key, so readers never see a torn or
stale object and any CDN in front may cache forever. Blocking I/O (files, boto3) runs in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from core.errors import ConfigError, ConfigProblem
from core.settings import CardsSettings

__all__ = ["LocalFileStore", "ObjectStore", "S3Store", "check_key", "store_from_settings"]

_KEY = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


def check_key(key: str) -> str:
    """Refuse keys that could escape the store's root (`..`, absolute paths, odd characters)."""
    if not _KEY.fullmatch(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"invalid object key {key!r}")
    return key


@runtime_checkable
class ObjectStore(Protocol):
    async def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        ...

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the object (no error when there is none)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Where it stores, for health reports (no secrets)."""
        ...


class LocalFileStore:
    """Objects as files under `root` (default `var/cards`); writes are atomic renames."""

    def __init__(self, root: Path | str = Path("var/cards")) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)

        def read() -> bytes | None:
            try:
                return path.read_bytes()
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(read)

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write beside the target, then rename: a concurrent reader sees all or nothing.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

        await asyncio.to_thread(write)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    def describe(self) -> dict[str, Any]:
        return {"store": "local", "path": str(self.root)}


class S3Store:
    """Objects in an S3 bucket (AWS or any S3-compatible server), under an optional prefix.

    `client` is a boto3 S3 client; build one with `S3Store.connect(...)`. boto3 is an
    optional dependency (`pip install oof[s3]`), imported only here.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def connect(
        cls,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> S3Store:
        import boto3  # optional dependency
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=10),
        )
        return cls(client, bucket, prefix)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @staticmethod
    def _missing(exc: Exception) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    async def get(self, key: str) -> bytes | None:
        def read() -> bytes | None:
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            except self._client.exceptions.ClientError as exc:
                if self._missing(exc):
                    return None
                raise
            with response["Body"] as body:
                return bytes(body.read())

        return await asyncio.to_thread(read)

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        await asyncio.to_thread(
            self._client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
        )

    async def exists(self, key: str) -> bool:
        def head() -> bool:
            try:
                self._client.head_object(Bucket=self.bucket, Key=self._key(key))
            except self._client.exceptions.ClientError as exc:
                if self._missing(exc):
                    return False
                raise
            return True

        return await asyncio.to_thread(head)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=self._key(key))

    def describe(self) -> dict[str, Any]:
        return {"store": "s3", "bucket": self.bucket, "prefix": self.prefix,
                "endpoint": self._client.meta.endpoint_url}


def store_from_settings(cards: CardsSettings, root: Path) -> ObjectStore:
    """The configured store; `s3` without boto3 is a configuration error that names the fix."""
    if cards.store == "local":
        return LocalFileStore(cards.local_path(root))
    try:
        import boto3  # noqa: F401 - only checking it is there
    except ImportError:
        raise ConfigError([ConfigProblem("cards.store", "is s3, which needs boto3: pip install 'oof[s3]'")]) from None
    secret = cards.s3_secret_access_key
    return S3Store.connect(
        cards.s3_bucket or "", prefix=cards.s3_prefix, endpoint_url=cards.s3_endpoint_url, region=cards.s3_region,
        access_key_id=cards.s3_access_key_id.get_secret_value() if cards.s3_access_key_id else None,
        secret_access_key=secret.get_secret_value() if secret else None,
    )
