"""Which URLs and addresses the SSRF guard refuses, judged in-process: literal addresses
need no resolver and no traffic; host names are answered by a stub resolver."""

from __future__ import annotations

import socket

import pytest

from apps.core.http import SSRFError, UnusableURL, check_url
from apps.core.special_addresses import CLOUD_METADATA, SPECIAL_PURPOSE


@pytest.mark.parametrize(
    "address",
    [
        "168.63.129.16",  # Azure WireServer: a public-looking address
        "192.0.0.192",  # Oracle Cloud metadata
        "192.0.0.8",
        "198.18.0.1",
        "198.19.255.254",
        "100.64.0.1",
        "100.100.100.200",  # Alibaba metadata
        "240.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "192.88.99.1",
        "192.31.196.1",
        "203.0.113.9",
        "224.0.0.1",
        "169.254.169.254",
        "169.254.170.2",
        "[::]",
        "[::1]",
        "[::ffff:169.254.169.254]",
        "[::ffff:10.0.0.1]",
        "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
        "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
        "[64:ff9b:1::1]",
        "[2002:7f00:1::1]",  # 6to4 of 127.0.0.1
        "[2002:a9fe:a9fe::1]",  # 6to4 of the metadata address
        "[2001::1]",  # Teredo
        "[2001:db8::1]",
        "[100::1]",
        "[fc00::1]",
        "[fd00:ec2::254]",  # AWS metadata over IPv6
        "[fe80::1]",
        "[fec0::1]",
        "[ff02::1]",
        "[5f00::1]",
        "[3fff::1]",
    ],
)
def test_every_special_purpose_and_metadata_address_is_refused(address):
    with pytest.raises(SSRFError):
        check_url(f"http://{address}/")


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]", "[64:ff9b::5db8:d70e]"]
)
def test_ordinary_global_addresses_pass(address):
    check_url(f"http://{address}/")  # a literal: judged without resolving or connecting


def test_the_table_names_the_registry_entries_it_was_built_from():
    names = {row.network.with_prefixlen: row.name for row in SPECIAL_PURPOSE}
    assert "RFC 6890" in names["192.0.0.0/24"] and "RFC 2544" in names["198.18.0.0/15"]
    assert "RFC 4193" in names["fc00::/7"] and "Teredo" in names["2001::/23"]
    assert {"168.63.129.16/32", "fd00:ec2::254/128"} <= {
        row.network.with_prefixlen for row in CLOUD_METADATA
    }


@pytest.mark.parametrize(
    "host", ["metadata.google.internal", "metadata", "instance-data", "metadata.goog"]
)
def test_metadata_host_names_are_refused_without_resolving(host, monkeypatch):
    def no_resolver(*args, **kwargs):
        raise AssertionError("resolved")

    monkeypatch.setattr(socket, "getaddrinfo", no_resolver)
    with pytest.raises(SSRFError, match="metadata"):
        check_url(f"http://{host}/computeMetadata/v1/")


def test_an_allow_list_opens_a_private_range_but_never_metadata(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["169.254.0.0/16", "10.0.0.0/8"]}
    check_url("http://10.1.2.3/")
    check_url("http://169.254.1.1/")
    with pytest.raises(SSRFError, match="never allowed"):
        check_url("http://169.254.169.254/")
    with pytest.raises(SSRFError, match="never allowed"):
        check_url("http://[::ffff:169.254.169.254]/", allow=["::/0"])


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://0x7f.1/", "not a plain IPv4 address"),
        ("http://0x7f000001/", "not a plain IPv4 address"),
        ("http://017700000001/", "not a plain IPv4 address"),
        ("http://2130706433/", "not a plain IPv4 address"),
        ("http://127.1/", "not a plain IPv4 address"),
        ("http://0177.0.0.1/", "Invalid IPv4 address"),
        ("http://1.2.3.4.5/", "not a plain IPv4 address"),
        ("http://\u0661\u0662\u0667.0.0.1/", "cannot be used"),  # Arabic-Indic digits
        ("http://\uff11\uff12\uff17.0.0.1/", "cannot be used"),  # full-width digits
        ("http://example.com:99999/", "port 99999 is out of range"),
        ("http://example.com:0/", "port 0 is out of range"),
        ("http://example.com:-1/", "cannot be used"),
        ("http://evil.example@127.0.0.1/", "user name or password"),
        ("http://127.0.0.1\\@evil.example/", "user name or password"),
        ("http://[fe80::1%25eth0]/", "zone ids are refused"),
        ("http://exa mple.com/", "not a valid host name"),
        ("http:///path-only", "cannot be used"),
    ],
)
def test_a_url_with_an_ambiguous_spelling_is_refused_with_a_reason(url, says):
    with pytest.raises(UnusableURL, match=says):
        check_url(url)
