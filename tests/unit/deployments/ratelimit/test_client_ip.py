"""deployments.ratelimit.client_ip: X-Forwarded-For only behind trusted proxies."""

from __future__ import annotations

import pytest

from deployments.ratelimit.client_ip import client_ip, parse_ip, parse_networks

TRUSTED = parse_networks(["10.0.0.0/8", "2001:db8:ffff::/48"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # An untrusted peer's XFF is the client's own claim: ignored.
        ("203.0.113.7", "1.2.3.4", "203.0.113.7"),
        ("203.0.113.7", None, "203.0.113.7"),
        # Trusted proxy, no header: the proxy is all we know.
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "", "10.0.0.1"),
        # Trusted chain: first untrusted from the right; the forged left part is ignored.
        ("10.0.0.1", "198.51.100.9", "198.51.100.9"),
        ("10.0.0.1", "6.6.6.6, 198.51.100.9, 10.1.2.3", "198.51.100.9"),
        ("10.0.0.1", "6.6.6.6,198.51.100.9,10.1.2.3,10.9.9.9", "198.51.100.9"),
        # Every hop trusted: the leftmost one seen.
        ("10.0.0.1", "10.2.2.2, 10.3.3.3", "10.2.2.2"),
        # IPv6 peers, entries, brackets and ports.
        ("2001:db8:ffff::1", "2001:DB8:1::0001", "2001:db8:1::1"),
        ("2001:db8:ffff::1", "[2001:db8:1::1]:4711, 10.0.0.2", "2001:db8:1::1"),
        ("10.0.0.1", "198.51.100.9:5555", "198.51.100.9"),
        ("::ffff:10.0.0.1", "198.51.100.9", "198.51.100.9"),
        ("::ffff:203.0.113.7", "198.51.100.9", "203.0.113.7"),
        # Garbage stops the walk at the last hop we can vouch for; empty entries are skipped.
        ("10.0.0.1", "198.51.100.9, not-an-ip", "10.0.0.1"),
        ("10.0.0.1", "6.6.6.6, garbage, 10.1.2.3", "10.1.2.3"),
        ("10.0.0.1", "unknown", "10.0.0.1"),
        ("10.0.0.1", " , 198.51.100.9 ,, ", "198.51.100.9"),
        ("10.0.0.1", "[2001:db8::1", "10.0.0.1"),
        ("10.0.0.1", "999.1.1.1", "10.0.0.1"),
        ("10.0.0.1", "1.2.3.4\x00", "10.0.0.1"),
        # A peer that is not an IP (unix socket, test client) is returned as is, XFF ignored.
        ("testclient", "198.51.100.9", "testclient"),
    ],
)
def test_client_ip(peer: str, xff: str | None, expected: str) -> None:
    assert client_ip(peer, xff, TRUSTED) == expected


def test_no_trusted_proxies_means_xff_is_never_used() -> None:
    assert client_ip("10.0.0.1", "198.51.100.9", []) == "10.0.0.1"


def test_parse_ip_normalises() -> None:
    assert str(parse_ip(" [::1] ")) == "::1"
    assert parse_ip("1.2.3.4:80:90") is None
    assert parse_ip("") is None
