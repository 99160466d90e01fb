"""The one guard for every URL catalens fetches: scheme, resolved address, operator allow list.

A URL passes when its scheme is http or https and every address its host resolves to is publicly routable,
or when the operator allowed the host name or a network holding the address (``cdn.example.com``,
``.example.com`` for a domain and its subdomains, ``10.2.0.0/16``, ``127.0.0.1``). The host is resolved
once, here; the fetcher then connects to the address this guard returned (see :mod:`catalens.indexer.fetch`),
so a DNS answer that changes between the check and the connection (DNS rebinding) cannot reach an address
that was never checked.

IPv4 hosts are read the way C resolvers read them, so ``2130706433``, ``0x7f000001``, ``017700000001`` and
``127.1`` are all 127.0.0.1 here too; IPv6 forms that embed an IPv4 address (``::ffff:127.0.0.1``,
``::127.0.0.1``, 6to4, NAT64) are judged by the embedded address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from catalens.indexer.errors import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("http", "https")
_NUMERIC_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class URLRefusedError(FetchError):
    """The guard refused a URL before any connection was made; ``rule`` names the rule it broke."""

    def __init__(self, url: str, rule: str, detail: str) -> None:
        self.url = url
        self.rule = rule
        self.detail = detail
        super().__init__(url, f"refused by the URL guard ({rule}): {detail}")


@dataclass(frozen=True)
class AllowList:
    """Hosts and networks the operator trusts although they are not public.

    Attributes:
        hosts: exact host names, lower case, without a trailing dot.
        domains: suffixes (``.example.com``) allowing a domain and every subdomain.
        networks: IP networks; a single address is a /32 or /128.
    """

    hosts: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    def allows_host(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return name in self.hosts or any(name.endswith(d) or name == d[1:] for d in self.domains)

    def allows_address(self, address: IPAddress) -> bool:
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and (embedded := embedded_ipv4(address)) is not None:
            candidates.append(embedded)  # allowing 127.0.0.1 allows ::ffff:127.0.0.1 too
        return any(a.version == net.version and a in net for a in candidates for net in self.networks)


def parse_allow(entries: str | Iterable[str]) -> AllowList:
    """Read an allow list: a comma-separated string, or an iterable of such strings.

    An entry is an IP address, a CIDR network, a host name, or ``.domain`` / ``*.domain``.

    Raises:
        ValueError: an entry is none of these (a typo should stop start-up, not widen or narrow access).
    """
    items = [part for entry in ([entries] if isinstance(entries, str) else entries) for part in entry.split(",")]
    hosts: set[str] = set()
    domains: list[str] = []
    networks: list[IPNetwork] = []
    for raw in items:
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        name = entry.removeprefix("*").rstrip(".")
        label = name.removeprefix(".")
        if not label or not re.fullmatch(
            r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*", label
        ):
            raise ValueError(f"fetch allow-list entry {raw.strip()!r} is not a host name, address or network")
        if _NUMERIC_IPV4.match(label) or label.rsplit(".", 1)[-1].isdigit():  # a misspelt address, not a name
            raise ValueError(f"fetch allow-list entry {raw.strip()!r} is not a valid address or network")
        if name.startswith("."):
            domains.append(name)
        else:
            hosts.add(name)
    return AllowList(frozenset(hosts), tuple(domains), tuple(networks))


@dataclass(frozen=True)
class CheckedURL:
    """A URL the guard passed, with the address the connection must go to."""

    url: httpx.URL
    host: str
    port: int
    address: str


def check_url(url: str | httpx.URL, allow: AllowList) -> CheckedURL:
    """Check a URL and resolve its host once.

    Returns:
        the URL with the one address to connect to.

    Raises:
        URLRefusedError: a rule refuses the URL (``rule``: scheme, address, resolution...).
    """
    text = str(url)
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as e:
        raise URLRefusedError(text, "invalid URL", str(e)) from None
    if parsed.scheme not in SCHEMES:
        raise URLRefusedError(text, "scheme", f"only http and https URLs are fetched, not {parsed.scheme or 'none'!r}")
    host = parsed.host
    if not host:
        raise URLRefusedError(text, "invalid URL", "the URL has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    host_allowed = allow.allows_host(host)
    addresses = _resolve(text, host, port)
    for address in addresses:
        if host_allowed or allow.allows_address(address):
            continue
        rule = refused_rule(address)
        if rule is not None:
            shown = host if str(address) == host else f"{host} resolves to {address}, which"
            raise URLRefusedError(
                text,
                rule,
                f"{shown} is a {rule} address; allow it explicitly (CATALENS_FETCH_ALLOW or --fetch-allow) "
                "if this host is yours",
            )
    first = addresses[0]
    # An IPv4-mapped address is an IPv4 peer: connect over IPv4 (works where IPv6 sockets are v6-only).
    mapped = first.ipv4_mapped if isinstance(first, ipaddress.IPv6Address) else None
    return CheckedURL(parsed, host, port, str(mapped or first))


def refused_rule(address: IPAddress) -> str | None:
    """The name of the rule that refuses this address, or ``None`` for a publicly routable one."""
    embedded = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    if embedded is not None:
        return refused_rule(embedded)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, IPv4-compatible, 6to4 or NAT64 IPv6 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    value = int(address)
    if address in _NAT64 or (value >> 32 == 0 and value > 1):  # ::a.b.c.d (but not :: or ::1)
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


def _resolve(url: str, host: str, port: int) -> list[IPAddress]:
    literal = _literal_address(url, host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        # One reason for every failure: which names exist inside a network is not the caller's business.
        raise FetchError(url, "cannot connect: the host name does not resolve") from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise FetchError(url, "cannot connect: the host name does not resolve")
    return found


def _literal_address(url: str, host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_IPV4.match(host):
        # Decimal, octal, hex and short forms, read as inet_aton (and so every C resolver) reads them.
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise URLRefusedError(url, "invalid address", f"{host!r} is not a valid IPv4 address") from None
    return None
