"""A JWKS endpoint over HTTPS on 127.0.0.1, for replicas in other processes.

`AuthSettings.jwks_url` must be https, so the e2e replicas fetch Dynamic-shaped keys from
this server; they trust its self-signed certificate through `SSL_CERT_FILE` (httpx honours
it), which the fixture sets in the replicas' environment only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deployments.auth.testing import TEST_ENVIRONMENT_ID

__all__ = ["TlsJwksServer", "self_signed_certificate"]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for 127.0.0.1, its own CA, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oof-e2e-jwks")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "jwks-cert.pem", directory / "jwks-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class TlsJwksServer:
    """`with TlsJwksServer(document, directory) as server: server.url, server.ca_file, server.fetches`."""

    def __init__(self, document: dict[str, Any], directory: Path) -> None:
        self.document = document
        self.fetches = 0
        self.ca_file, key_file = self_signed_certificate(directory)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.fetches += 1
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="tls-jwks", daemon=True
        )

    @property
    def url(self) -> str:
        port = self._httpd.server_address[1]
        return f"https://127.0.0.1:{port}/api/v0/sdk/{TEST_ENVIRONMENT_ID}/.well-known/jwks"

    def __enter__(self) -> TlsJwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
