"""The address classifier and host checks of the SSRF guard (no network needed)."""

from __future__ import annotations

import ipaddress

import pytest

from safe_io.netguard import AddressPolicy, AddressRefused, check_host, check_ip, classify, parse_loose_ipv4

GUARD = AddressPolicy()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.1.1", "link-local"),
        ("169.254.169.254", "metadata"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "metadata"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("::ffff:8.8.8.8", "IPv4-mapped"),
        ("::127.0.0.1", "IPv4-compatible"),
        ("2002:7f00:1::", "6to4"),
        ("2002:a9fe:a9fe::1", "6to4"),
        ("64:ff9b::7f00:1", "NAT64"),
        ("64:ff9b::a9fe:a9fe", "NAT64"),
        ("64:ff9b:1::1", "NAT64"),
        ("2001:db8::1", "private"),
    ],
)
def test_internal_addresses_are_refused_with_their_reason(address: str, reason: str) -> None:
    why = classify(ipaddress.ip_address(address))
    assert why is not None and reason in why
    with pytest.raises(AddressRefused, match="refused"):
        check_ip(ipaddress.ip_address(address), GUARD)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "2002:0808:0808::1", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    assert classify(ipaddress.ip_address(address)) is None
    check_ip(ipaddress.ip_address(address), GUARD)


@pytest.mark.parametrize(
    ("spelling", "value"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("10.0x10.1", "10.16.0.1"),
        ("8.8.8.8", "8.8.8.8"),
    ],
)
def test_loose_ipv4_spellings_read_like_inet_aton(spelling: str, value: str) -> None:
    assert parse_loose_ipv4(spelling) == ipaddress.IPv4Address(value)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f.1",
        "127.1",
        "127.0.0.1.",
        "0x7F.0.0.1",
        "::1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "::ffff:7f00:1",
        "[0:0:0:0:0:0:0:1]",
        "[fe80::1%25eth0]",
        "[fe80::1%eth0]",
        "localhost",
        "LOCALHOST.",
        "api.localhost",
        "metadata.google.internal",
        "metadata.google.internal.",
        "169.254.169.254",
        "0xa9fea9fe",
        "0",
        "0.0.0.0",
        "10.0.0.1",
        "printer.local",
        "100.64.1.1",
    ],
)
def test_hostile_hosts_are_refused_before_any_lookup(host: str) -> None:
    with pytest.raises(AddressRefused) as info:
        check_host(host, GUARD)
    assert str(info.value)  # a clear, non-empty reason


@pytest.mark.parametrize("host", ["999.1.1.1", "1.2.3.4.5", "08.1.1.1", "1.300.1.1", "4294967296"])
def test_malformed_numeric_hosts_are_refused(host: str) -> None:
    with pytest.raises(AddressRefused):
        check_host(host, GUARD)


@pytest.mark.parametrize("host", ["example.com", "en.wikipedia.org", "8.8.8.8", "[2606:4700:4700::1111]", "1e100.net"])
def test_ordinary_hosts_pass(host: str) -> None:
    check_host(host, GUARD)


def test_allow_private_lifts_the_guard() -> None:
    open_policy = AddressPolicy(allow_private=True)
    check_host("localhost", open_policy)
    check_ip(ipaddress.ip_address("127.0.0.1"), open_policy)
    check_ip(ipaddress.ip_address("169.254.169.254"), open_policy)


def test_exceptions_are_bound_to_network_and_port() -> None:
    policy = AddressPolicy.from_strings(False, ["127.0.0.1:8080", "10.1.0.0/16", "[::1]:9000"])
    check_ip(ipaddress.ip_address("127.0.0.1"), policy, 8080)
    check_ip(ipaddress.ip_address("10.1.200.3"), policy, 443)
    check_ip(ipaddress.ip_address("::1"), policy, 9000)
    with pytest.raises(AddressRefused):
        check_ip(ipaddress.ip_address("127.0.0.1"), policy, 8081)
    with pytest.raises(AddressRefused):
        check_ip(ipaddress.ip_address("10.2.0.1"), policy, 443)
    with pytest.raises(AddressRefused):
        check_ip(ipaddress.ip_address("::1"), policy, 9001)
    with pytest.raises(ValueError, match="invalid allowed address"):
        AddressPolicy.from_strings(False, ["not-an-address"])
