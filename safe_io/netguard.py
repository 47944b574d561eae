"""Which network addresses a fetch may reach (the SSRF guard).

Pure functions, no I/O: the fetcher resolves names and asks ``check_ip`` about
every address it would connect to, and ``check_host`` about the URL's host
before any resolution (so odd spellings of internal addresses are refused with
a clear reason even where the resolver would accept them).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    }
)
METADATA_HOSTNAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data"})
_LOCAL_SUFFIXES = (".localhost", ".localdomain", ".internal", ".local", ".home.arpa")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NUMERIC_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)


class AddressRefused(ValueError):
    """The address or host is not one a fetch may reach; the message says why."""


@dataclass(frozen=True)
class AddressPolicy:
    """``allow_private`` lifts the guard entirely; ``allowed`` lists exceptions.

    Each exception is a network (``10.1.2.0/24``) optionally bound to one port
    (``127.0.0.1:8080``, ``[::1]:8080``), for a corpus server on an internal
    address while the rest stays refused.
    """

    allow_private: bool = False
    allowed: tuple[tuple[IPNetwork, int | None], ...] = field(default_factory=tuple)

    @classmethod
    def from_strings(cls, allow_private: bool, allowed: Iterable[str] = ()) -> AddressPolicy:
        return cls(allow_private, tuple(parse_allowed(entry) for entry in allowed))

    def is_excepted(self, ip: IPAddress, port: int | None) -> bool:
        return any(ip in net and (want is None or want == port) for net, want in self.allowed)


def parse_allowed(entry: str) -> tuple[IPNetwork, int | None]:
    """Parse ``NET``, ``NET:PORT`` or ``[V6NET]:PORT``."""
    text = entry.strip()
    port: int | None = None
    if text.startswith("["):
        inner, _, rest = text[1:].partition("]")
        text = inner
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        text, port_text = text.split(":")
        port = int(port_text)
    try:
        return ipaddress.ip_network(text, strict=False), port
    except ValueError as exc:
        raise ValueError(f"invalid allowed address {entry!r}: {exc}") from None


def parse_loose_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Read ``host`` the way ``inet_aton`` does (``127.1``, ``0177.0.0.1``, ``0x7f.1``, ``2130706433``).

    Returns None when ``host`` is not numeric at all; raises ``AddressRefused``
    for numeric-looking hosts that no resolver reads the same way twice.
    """
    parts = host.split(".")
    if not parts or not all(_NUMERIC_PART.match(p) for p in parts):
        return None
    if len(parts) > 4:
        raise AddressRefused(f"malformed numeric host {host!r}")
    values: list[int] = []
    for part in parts:
        if part.lower().startswith("0x"):
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not set(part) <= set("01234567"):
                raise AddressRefused(f"malformed octal number in host {host!r}")
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise AddressRefused(f"numeric host {host!r} is out of range")
    number = 0
    for v in head:
        number = number * 256 + v
    number = (number << (8 * (5 - len(values)))) + last
    return ipaddress.IPv4Address(number)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]
    if ip in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched from, or None when it is an ordinary public address."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "an IPv6 address with a zone id"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            kind, inner = embedded
            if kind == "IPv4-mapped":
                return f"an IPv4-mapped IPv6 address (of {inner})"
            reason = classify(inner)
            if reason is not None:
                return f"a {kind} IPv6 address embedding {inner}, {reason}"
            return None
        if int(ip) >> 32 == 0 and int(ip) > 1:
            return f"an IPv4-compatible IPv6 address (of {ipaddress.IPv4Address(int(ip))})"
        if ip in _NAT64_LOCAL:
            return "a local-use NAT64 address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT (100.64.0.0/10) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a non-global address"
    return None


def check_ip(
    ip: IPAddress, policy: AddressPolicy, port: int | None = None, host: str | None = None, *, literal: bool = False
) -> None:
    """Raise ``AddressRefused`` unless ``ip`` may be connected to under ``policy``."""
    if policy.allow_private or policy.is_excepted(ip, port):
        return
    reason = classify(ip)
    if reason is not None:
        if not host or host.strip("[]") == str(ip):
            shown = str(ip)
        elif literal:
            shown = f"{host} (= {ip})"
        else:
            shown = f"{host} resolves to {ip}"
        raise AddressRefused(f"refused: {shown}, which is {reason}")


def literal_ip(host: str) -> IPAddress | None:
    """The address a URL host spells directly (any IPv4 spelling, bracketed IPv6), else None."""
    name = host.strip().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if ":" in name:
        if "%" in name:
            raise AddressRefused(f"refused: IPv6 zone ids are not allowed ({host!r})")
        try:
            return ipaddress.IPv6Address(name)
        except ValueError:
            raise AddressRefused(f"malformed IPv6 host {host!r}") from None
    return parse_loose_ipv4(name)


def check_host(host: str, policy: AddressPolicy, port: int | None = None) -> None:
    """Refuse hosts that are internal by name or by any literal spelling; names go on to DNS."""
    if not host:
        raise AddressRefused("the URL has no host")
    ip = literal_ip(host)
    if ip is not None:
        check_ip(ip, policy, port, host, literal=True)
        return
    if policy.allow_private:
        return
    name = host.strip().rstrip(".").lower()
    if not name:
        raise AddressRefused(f"malformed host {host!r}")
    if name == "localhost" or name.endswith(_LOCAL_SUFFIXES):
        raise AddressRefused(f"refused: {host} is a local host name")
    if name in METADATA_HOSTNAMES:
        raise AddressRefused(f"refused: {host} is a cloud metadata host name")
