"""SSRF guard: internal addresses, odd schemes and rebinding-prone names are refused.

No network I/O: every test that needs DNS replaces socket.getaddrinfo.
"""
import socket

import pytest

from shared import netguard
from shared.netguard import UnresolvableHost, UnsafeURL, check_url, resolve_checked


def _no_network(*args, **kwargs):
    raise AssertionError(f"unexpected network I/O: {args!r}")


@pytest.fixture
def offline(monkeypatch):
    """Fail the test on any DNS lookup or connection attempt."""
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket.socket, "connect", _no_network)


def fake_dns(monkeypatch, table):
    """Make getaddrinfo answer from `table` (host -> list of IPs); unknown hosts fail."""
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0))
            for ip in table[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1:6379/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.1.2.3]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://2130706433/",  # 127.0.0.1 as a single integer
        "http://0x7f.1/",  # 127.0.0.1 in legacy hex/short form
        "http://017700000001/",  # 127.0.0.1 in octal
        "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
        "http://[64:ff9b::a00:1]/",  # NAT64 wrapping 10.0.0.1
        "https://127.0.0.1:8443/path?q=1",
    ],
)
def test_refuses_internal_literal_addresses_without_dns(offline, url):
    with pytest.raises(UnsafeURL):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/file",
        "gopher://example.com/",
        "javascript:alert(1)",
        "example.com/path",
        "",
        "   ",
        "http://",
        "http:///path",
        "http://user:pass@example.com/",
        "http://user@example.com/",
        "http://exa mple.com/",
        "http://example.com\\@127.0.0.1/",
        "http://example.com/\r\nHost: internal",
        "http://[::1/",
        "http://example.com:99999/",
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_refuses_bad_scheme_or_host_even_when_private_allowed(offline, url, allow_private):
    with pytest.raises(UnsafeURL):
        check_url(url, allow_private=allow_private)


@pytest.mark.parametrize("value", [None, 123, b"http://example.com/"])
def test_refuses_non_string(offline, value):
    with pytest.raises(UnsafeURL, match="non-empty string"):
        check_url(value, allow_private=False)


@pytest.mark.parametrize("url", ["http://localhost/", "http://LOCALHOST./x", "http://api.localhost:8000/"])
def test_refuses_localhost_names(offline, url):
    with pytest.raises(UnsafeURL, match="loopback"):
        check_url(url, allow_private=False)


def test_refuses_name_resolving_to_private_address(monkeypatch):
    calls = fake_dns(monkeypatch, {"internal.example.com": ["10.1.2.3"]})
    with pytest.raises(UnsafeURL, match="10.1.2.3"):
        check_url("https://internal.example.com/hook", allow_private=False)
    assert calls == ["internal.example.com"]


def test_refuses_when_any_resolved_address_is_private(monkeypatch):
    fake_dns(monkeypatch, {"mixed.example.com": ["93.184.216.34", "2606:4700::1", "127.0.0.1"]})
    with pytest.raises(UnsafeURL, match="127.0.0.1"):
        check_url("http://mixed.example.com/", allow_private=False)


def test_refuses_name_resolving_to_mapped_loopback(monkeypatch):
    fake_dns(monkeypatch, {"v6.example.com": ["::ffff:127.0.0.1"]})
    with pytest.raises(UnsafeURL):
        check_url("http://v6.example.com/", allow_private=False)


def test_accepts_name_resolving_only_to_public_addresses(monkeypatch):
    fake_dns(monkeypatch, {"public.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]})
    assert check_url("https://public.example.com/x", allow_private=False) is None
    assert resolve_checked("public.example.com", 443, allow_private=False) == [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
    ]


def test_unresolvable_host_is_a_distinct_refusal(monkeypatch):
    fake_dns(monkeypatch, {})
    with pytest.raises(UnresolvableHost, match="cannot resolve"):
        check_url("http://nowhere.example.com/", allow_private=False)
    assert issubclass(UnresolvableHost, UnsafeURL) and issubclass(UnsafeURL, ValueError)


@pytest.mark.parametrize("url", ["http://93.184.216.34/", "https://93.184.216.34:8443/a?b=c", "http://[2606:4700::1]/"])
def test_accepts_public_literal_ip_without_network_io(offline, url):
    assert check_url(url, allow_private=False) is None


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/", "http://10.0.0.1/", "http://192.168.1.1/", "http://[::1]/", "http://localhost:9000/"])
def test_allow_private_keeps_only_scheme_and_host_checks(offline, url):
    assert check_url(url, allow_private=True) is None


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://metadata.google.internal/computeMetadata/v1/", "http://[::ffff:169.254.169.254]/"],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_cloud_metadata_is_always_refused(offline, url, allow_private):
    with pytest.raises(UnsafeURL, match="metadata"):
        check_url(url, allow_private=allow_private)


def test_resolve_checked_rechecks_at_connect_time(monkeypatch):
    """A name that was public at check time but now resolves inward (DNS rebinding)."""
    table = {"rebind.example.com": ["93.184.216.34"]}
    fake_dns(monkeypatch, table)
    check_url("http://rebind.example.com/", allow_private=False)
    table["rebind.example.com"] = ["127.0.0.1"]
    with pytest.raises(UnsafeURL):
        resolve_checked("rebind.example.com", 80, allow_private=False)
    assert resolve_checked("rebind.example.com", 80, allow_private=True) == ["127.0.0.1"]


def test_resolve_checked_literal_ip_skips_dns(offline):
    assert resolve_checked("93.184.216.34", 80, allow_private=False) == ["93.184.216.34"]
    with pytest.raises(UnsafeURL):
        resolve_checked("10.0.0.1", 80, allow_private=False)


def test_messages_are_clear():
    with pytest.raises(UnsafeURL) as info:
        check_url("ftp://example.com/", allow_private=False)
    assert "http or https" in str(info.value)
    with pytest.raises(UnsafeURL) as info:
        check_url("http://10.0.0.1/", allow_private=False)
    assert "10.0.0.1" in str(info.value) and "private" in str(info.value)
    assert netguard._blocked_reason(netguard.ipaddress.ip_address("100.64.0.1")) == "carrier-grade NAT"
