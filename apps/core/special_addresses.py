"""The one table of addresses that user-supplied URLs may never reach.

Sources (checked 2026-12):
- IANA IPv4 Special-Purpose Address Registry
  https://www.iana.org/assignments/iana-ipv4-special-registry/
- IANA IPv6 Special-Purpose Address Registry
  https://www.iana.org/assignments/iana-ipv6-special-registry/
- IANA multicast space (224.0.0.0/4, ff00::/8) and the deprecated IPv6 site-local block
  (fec0::/10, RFC 3879), which are not in those registries but are never an API.
- Cloud providers' instance metadata and host agents (AWS, GCP, Azure, Oracle, Alibaba,
  Tencent, DigitalOcean): their documentation for the instance metadata service.

Every registry entry is blocked, the few the registry marks "globally reachable" (anycast
relays, AS112, AMT) included: none of them is an HTTP API a flow should call.

Translation prefixes carry an IPv4 address inside an IPv6 one (IPv4-mapped, NAT64, 6to4);
those are judged by the IPv4 address they reach, so ``::ffff:127.0.0.1`` or
``64:ff9b::a9fe:a9fe`` are refused like 127.0.0.1 and 169.254.169.254.

An admin's allow-list may open the special-purpose ranges (a private API in the office
network), never the cloud metadata addresses: those hand out the host's own credentials.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Blocked(NamedTuple):
    network: Network
    name: str


def _table(rows: list[tuple[str, str]]) -> tuple[Blocked, ...]:
    return tuple(Blocked(ipaddress.ip_network(cidr), name) for cidr, name in rows)


SPECIAL_PURPOSE = _table(
    [
        # IPv4 special-purpose registry
        ("0.0.0.0/8", "'this network' (RFC 791)"),
        ("10.0.0.0/8", "private-use (RFC 1918)"),
        ("100.64.0.0/10", "shared address space / CGNAT (RFC 6598)"),
        ("127.0.0.0/8", "loopback (RFC 1122)"),
        ("169.254.0.0/16", "link-local (RFC 3927)"),
        ("172.16.0.0/12", "private-use (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
        ("192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"),
        ("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
        ("192.52.193.0/24", "AMT (RFC 7450)"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
        ("192.168.0.0/16", "private-use (RFC 1918)"),
        ("192.175.48.0/24", "direct delegation AS112 service (RFC 7534)"),
        ("198.18.0.0/15", "benchmarking (RFC 2544)"),
        ("198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"),
        ("203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"),
        ("224.0.0.0/4", "multicast (RFC 5771)"),
        ("240.0.0.0/4", "reserved (RFC 1112)"),
        ("255.255.255.255/32", "limited broadcast (RFC 919)"),
        # IPv6 special-purpose registry (translation prefixes are in TRANSLATION below)
        ("::/128", "unspecified address (RFC 4291)"),
        ("::1/128", "loopback (RFC 4291)"),
        ("::/96", "deprecated IPv4-compatible (RFC 4291)"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"),
        ("100::/64", "discard-only (RFC 6666)"),
        ("100:0:0:1::/64", "dummy IPv6 prefix (RFC 9780)"),
        ("2001::/23", "IETF protocol assignments, Teredo included (RFC 2928, RFC 4380)"),
        ("2001:db8::/32", "documentation (RFC 3849)"),
        ("2620:4f:8000::/48", "direct delegation AS112 service (RFC 7534)"),
        ("3fff::/20", "documentation (RFC 9637)"),
        ("5f00::/16", "segment routing SIDs (RFC 9602)"),
        ("fc00::/7", "unique-local (RFC 4193)"),
        ("fe80::/10", "link-local unicast (RFC 4291)"),
        ("fec0::/10", "deprecated site-local (RFC 3879)"),
        ("ff00::/8", "multicast (RFC 4291)"),
    ]
)

CLOUD_METADATA = _table(
    [
        ("169.254.169.254/32", "cloud instance metadata (AWS, GCP, Azure, Oracle, DigitalOcean)"),
        ("169.254.170.2/32", "AWS ECS task metadata"),
        ("169.254.0.23/32", "Tencent Cloud metadata"),
        ("100.100.100.200/32", "Alibaba Cloud metadata"),
        ("168.63.129.16/32", "Azure WireServer host agent"),
        ("192.0.0.192/32", "Oracle Cloud metadata"),
        ("fd00:ec2::254/128", "AWS instance metadata over IPv6"),
    ]
)

# Names that reach a metadata service through the host's resolver.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.azure.internal",
    }
)

IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 translation address reaches (IPv4-mapped, NAT64, 6to4)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address in IPV4_MAPPED or address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in SIX_TO_FOUR:
        return address.sixtofour
    return None


def metadata_reason(address: Address) -> str | None:
    """Why ``address`` is a cloud metadata address, or None."""
    inner = embedded_ipv4(address)
    target = inner or address
    return next((row.name for row in CLOUD_METADATA if target in row.network), None)


def special_purpose_reason(address: Address) -> str | None:
    """Why ``address`` is special-purpose (the registry entry's name), or None when it is an
    ordinary global address."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return special_purpose_reason(inner)
    return next((row.name for row in SPECIAL_PURPOSE if address in row.network), None)
