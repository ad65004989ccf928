"""Test helpers shipped with the package: RSA keys, JWKS documents, Dynamic-shaped tokens, forged tokens.

For tests only (this and the API's): nothing in production imports it. Keys are 2048-bit,
the smallest PyJWT verifies without an `InsecureKeyLengthWarning`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = [
    "TEST_ENVIRONMENT_ID",
    "RsaTestKey",
    "make_rsa_key",
    "jwks_document",
    "dynamic_claims",
    "sign_token",
    "forge_token",
    "forge_hs256_token",
    "JwksServer",
]

TEST_ENVIRONMENT_ID = "2762a57b-faa4-41ce-9f16-abff9300e2c9"


@dataclass(frozen=True)
class RsaTestKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def public_jwk(self, **members: Any) -> dict[str, Any]:
        """The public JWK as Dynamic publishes it (`kid`, `alg`, `kty`, `use`, `e`, `n`), plus `members`."""
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk.pop("key_ops", None)  # PyJWT adds it; Dynamic's JWKS does not carry it
        jwk.update(kid=self.kid, alg="RS256", use="sig")
        jwk.update(members)
        return {k: v for k, v in jwk.items() if v is not None}  # `use=None` drops the member

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def make_rsa_key(kid: str | None = None, bits: int = 2048) -> RsaTestKey:
    return RsaTestKey(kid or f"test-{secrets.token_hex(4)}", rsa.generate_private_key(65537, bits))


def jwks_document(*keys: RsaTestKey | dict[str, Any]) -> dict[str, Any]:
    """`{"keys": [...]}`; pass raw dicts to publish odd keys (no kid, `use: enc`, EC...)."""
    return {"keys": [key.public_jwk() if isinstance(key, RsaTestKey) else key for key in keys]}


def dynamic_claims(
    environment_id: str = TEST_ENVIRONMENT_ID,
    *,
    issuer: str | None = None,
    now: float | None = None,
    lifetime_s: int = 3600,
    **overrides: Any,
) -> dict[str, Any]:
    """A minified Dynamic access-token payload; an override of None removes that claim."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "aud": "https://app.example.com",
        "iss": issuer or f"app.dynamic.xyz/{environment_id}",
        "sub": "0b1c5bd9-0c5e-4b1f-8f0e-1a2b3c4d5e6f",
        "sid": "5f2b6c1e-8d3a-4b7c-9e0f-112233445566",
        "environment_id": environment_id,
        "last_verified_credential_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e0f1a2b3c4d",
        "iat": issued,
        "exp": issued + lifetime_s,
        "scope": "user:basic",
        "verifiedCredentialsHashes": {"blockchain": "c2f3", "email": "a1b2"},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign_token(claims: dict[str, Any], key: RsaTestKey, *, headers: dict[str, Any] | None = None) -> str:
    """An RS256 token signed by `key`, `kid` set to its kid unless `headers` says otherwise."""
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, **(headers or {})})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def forge_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, e.g. `alg: none` with an empty signature."""
    return f"{_segment(header)}.{_segment(claims)}.{_b64(signature)}"


def forge_hs256_token(claims: dict[str, Any], secret: bytes, *, kid: str | None = None) -> str:
    """HS256 signed with `secret`: the RS/HS confusion attack passes the public key PEM. PyJWT refuses to make it."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


class JwksServer:
    """A real JWKS endpoint on 127.0.0.1:<free port>, in a thread; counts fetches, can answer 503 or switch keys.

    `with JwksServer(jwks_document(key)) as server: ... server.url ... server.fetches`
    """

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.status = 200  # set to 503 to play "Dynamic is down"
        self.fetches = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with server._lock:
                    server.fetches += 1
                    status, body = server.status, json.dumps(server.document).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="jwks-server", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/api/v0/sdk/{TEST_ENVIRONMENT_ID}/.well-known/jwks"

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
