"""The client address a per-IP limit should count against.

`X-Forwarded-For` is believed only when the direct peer is a trusted proxy, and then only up
to the first hop no trusted proxy vouches for: walking from the right, each trusted proxy
appended the address it saw, so the first untrusted entry is the client. Everything left of
it was written by the client and may be forged. A malformed entry stops the walk at the last
address we could vouch for (skipping it would hand the choice to whoever wrote the entries
further left); empty entries are only formatting and are skipped.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["IPAddress", "IPNetwork", "client_ip", "parse_networks", "parse_ip"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[IPNetwork]:
    """`RateLimitSettings.trusted_proxies` (IPs or CIDRs) as networks."""
    return [ipaddress.ip_network(value) for value in values]


def parse_ip(value: str) -> IPAddress | None:
    """An address from a header or peer field, or None; accepts `[v6]`, `[v6]:port` and `v4:port`."""
    text = value.strip()
    if text.startswith("["):
        text, bracket, _port = text[1:].partition("]")
        if not bracket:
            return None
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port, as some load balancers write it
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; count them as the IPv4 client.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    # `in` is simply False across IP versions.
    return any(address in network for network in trusted)


def client_ip(peer_ip: str, x_forwarded_for: str | None, trusted: Sequence[IPNetwork]) -> str:
    """The client's address as text; `peer_ip` itself unless it is a trusted proxy."""
    peer = parse_ip(peer_ip)
    if peer is None:
        return peer_ip  # not an IP (a unix socket, a test client): still a stable subject
    if not x_forwarded_for or not _trusted(peer, trusted):
        return str(peer)
    vouched = peer
    for entry in reversed(x_forwarded_for.split(",")):
        if not entry.strip():
            continue
        hop = parse_ip(entry)
        if hop is None:
            break
        if not _trusted(hop, trusted):
            return str(hop)
        vouched = hop
    return str(vouched)
