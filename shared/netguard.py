"""SSRF guard: decide whether a user-supplied URL may be fetched from inside the cluster.

Tasks (`http_request`) and webhooks POST or GET URLs chosen by API users. Without this guard a
user could make our workers talk to Postgres, Redis, the Kubernetes API or the cloud metadata
service (and read back its credentials). `check_url` runs before a request; `resolve_checked`
re-runs the address check at connect time, because a DNS name can resolve to a public address
for the check and to 127.0.0.1 a moment later (DNS rebinding).

`allow_private=True` (local development: webhook receivers on localhost) keeps only the
scheme/host sanity checks, plus the cloud-metadata block, which no legitimate target needs.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
METADATA_IPS = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "168.63.129.16")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(ValueError):
    """The URL must not be fetched (bad scheme/host, or it points at an internal address)."""


class UnresolvableHost(UnsafeURL):
    """The host name did not resolve; may be transient, unlike the other refusals."""


def _blocked_reason(ip: IPAddress) -> str | None:
    """Why `ip` is not a public unicast address, or None when it is."""
    # Addresses that embed an IPv4 address are judged by that address.
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = _blocked_reason(embedded)
            return f"embeds {embedded}, which is {reason}" if reason else None
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("carrier-grade NAT", isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def check_ip(ip: IPAddress | str, allow_private: bool) -> None:
    """Raise UnsafeURL if connecting to `ip` is not allowed."""
    ip = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    if ip in METADATA_IPS or (getattr(ip, "ipv4_mapped", None) in METADATA_IPS):
        raise UnsafeURL(f"address {ip} is a cloud metadata endpoint")
    if not allow_private:
        reason = _blocked_reason(ip)
        if reason:
            raise UnsafeURL(f"address {ip} is {reason}; private networks are not allowed")


def _literal_ip(host: str) -> IPAddress | None:
    """The IP a host string denotes without DNS, including legacy forms like 2130706433 or 0x7f.1."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host) and any(c.isdigit() for c in host):
        try:  # what getaddrinfo/inet_aton would accept for a "numeric" host
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def resolve_checked(host: str, port: int | None, allow_private: bool) -> list[str]:
    """Resolve `host` and return its addresses, raising UnsafeURL if ANY of them is refused."""
    literal = _literal_ip(host)
    if literal is not None:
        check_ip(literal, allow_private)
        return [str(literal)]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"cannot resolve host {host!r}: {exc}") from exc
    ips = list(dict.fromkeys(info[4][0] for info in infos))
    if not ips:
        raise UnresolvableHost(f"host {host!r} has no addresses")
    for ip in ips:
        try:
            check_ip(ip, allow_private)
        except UnsafeURL as exc:
            raise UnsafeURL(f"host {host!r} resolves to a refused address: {exc}") from None
    return ips


def check_url(url: str, allow_private: bool) -> None:
    """Raise UnsafeURL (with a clear message) unless `url` is a safe http(s) URL to fetch."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURL("URL must be a non-empty string")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "\\" for c in url):
        raise UnsafeURL("URL must not contain whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"invalid URL: {exc}") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UnsafeURL(f"URL scheme must be http or https, not {parts.scheme or 'missing'!r}")
    if "@" in parts.netloc:
        raise UnsafeURL("URL must not contain credentials (user:password@)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("URL has no host")
    try:
        host.encode("idna")
    except UnicodeError:
        raise UnsafeURL(f"invalid host name {host!r}") from None
    if host in METADATA_HOSTS:
        raise UnsafeURL(f"host {host!r} is a cloud metadata endpoint")
    if allow_private:
        literal = _literal_ip(host)
        if literal is not None:
            check_ip(literal, allow_private)
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeURL(f"host {host!r} is loopback; private networks are not allowed")
    resolve_checked(host, port or (443 if parts.scheme.lower() == "https" else 80), allow_private)
