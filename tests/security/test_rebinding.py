"""DNS rebinding and connect-time SSRF checks, in-process: the dispatcher's sender
(`dispatcher.sender.Sender`, on `shared.safe_http` + `shared.netguard`) with a resolver the
test controls (`socket.getaddrinfo`, the function the guard resolves with) and a real HTTP
server on 127.0.0.1 standing in for the private target. No request may ever reach it.

The positive controls send through the same patched resolver with private networks allowed
and see the request arrive, which proves the patched resolution is what the connection uses.
"""
from __future__ import annotations

import dataclasses
import socket
import sys
import uuid

import pytest
from webhooks.receiver import Receiver

from shared import netguard, safe_http

PUBLIC_IP = "93.184.216.34"


@pytest.fixture
def target():
    """The 'private' target: counts every request that reaches it."""
    r = Receiver()
    yield r
    r.close()


def dialing() -> bool:
    """Whether the current resolution is made by a connection being opened (urllib3's
    `_new_conn`), as opposed to a URL check."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "_new_conn":
            return True
        frame = frame.f_back
    return False


class Resolver:
    """getaddrinfo replacement: answers for the test's names from a per-name script (a list: one
    answer per call, the last one repeating; or a function called for each answer); everything
    else goes to the real resolver."""

    def __init__(self, real):
        self.real, self.script, self.calls = real, {}, []

    def __call__(self, host, port, *args, **kwargs):
        if host in self.script:
            answers = self.script[host]
            self.calls.append(host)
            if callable(answers):
                ip = answers()
            else:
                ip = answers.pop(0) if len(answers) > 1 else answers[0]
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (ip, port or 0))]
        return self.real(host, port, *args, **kwargs)


@pytest.fixture
def resolver(monkeypatch):
    r = Resolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", r)
    return r


def sender(allow_private: bool):
    from dispatcher.sender import Sender

    from shared.settings import Settings

    settings = dataclasses.replace(Settings.from_env(), webhook_allow_private_networks=allow_private,
                                   webhook_connect_timeout=2, webhook_read_timeout=2)
    return Sender(settings)


def delivery(url: str):
    from dispatcher.store import Claimed

    return Claimed(id=uuid.uuid4(), task_id=uuid.uuid4(), event="task.succeeded", attempt=1, max_attempts=5, url=url,
                   headers={"Content-Type": "application/json"}, body='{"event": "task.succeeded"}', secret="s",
                   interrupted=False)


def test_name_that_rebinds_to_loopback_after_creation_is_refused_at_send(resolver, target):
    """A name that resolves public when the task is created (the creation check passes) and to
    127.0.0.1 afterwards: the send is refused as final (no retry), nothing reaches the target."""
    host = f"rebind-{uuid.uuid4().hex[:8]}.example"
    resolver.script[host] = [PUBLIC_IP, "127.0.0.1"]
    url = f"http://{host}:{target.port}/hook"
    netguard.check_url(url, allow_private=False)  # what the gateway does at creation: passes
    result = sender(allow_private=False).send(delivery(url))
    assert result.refused and result.status_code is None, result
    assert "refused" in result.error.lower()
    assert target.requests() == []


def test_rebinding_between_the_send_check_and_the_connect_is_refused_at_connect(resolver, target):
    """The name resolves public for every URL check (creation, send time) and to loopback only
    when the connection is dialled: the guarded connection re-resolves and refuses."""
    host = f"late-{uuid.uuid4().hex[:8]}.example"
    resolver.script[host] = lambda: "127.0.0.1" if dialing() else PUBLIC_IP
    url = f"http://{host}:{target.port}/hook"
    netguard.check_url(url, allow_private=False)
    result = sender(allow_private=False).send(delivery(url))
    assert result.status_code is None and "refused" in result.error.lower(), result
    assert target.requests() == []


def test_guarded_session_refuses_at_connect_even_without_a_prior_check(resolver, target):
    """`safe_http.session` alone (used by the dispatcher and the worker's http_request) refuses
    to dial a name resolving to loopback, private, link-local, metadata or mapped addresses."""
    http = safe_http.session(allow_private=False)
    for ip in ("127.0.0.1", "10.1.2.3", "172.16.5.4", "192.168.1.1", "169.254.169.254", "::1", "::ffff:127.0.0.1",
               "fe80::1", "fd00:ec2::254", "0.0.0.0"):
        host = f"n{uuid.uuid4().hex[:8]}.example"
        resolver.script[host] = [ip]
        with pytest.raises(netguard.UnsafeURL):
            http.get(f"http://{host}:{target.port}/", timeout=2)
    assert target.requests() == []


def test_metadata_is_refused_even_when_private_networks_are_allowed(resolver, target):
    """With private networks allowed (local development) the URL checks do not resolve names,
    so the connect is the only resolution: a name resolving to a cloud metadata address there
    is still refused."""
    host = f"meta-{uuid.uuid4().hex[:8]}.example"
    resolver.script[host] = ["169.254.169.254"]
    result = sender(allow_private=True).send(delivery(f"http://{host}:{target.port}/hook"))
    assert result.status_code is None and "metadata" in result.error, result


def test_positive_control_the_patched_resolver_routes_the_connection(resolver, target):
    """With private networks allowed, the same patched name reaches the local target: the
    refusals above are the guard's doing, not a resolver that was never used."""
    host = f"ok-{uuid.uuid4().hex[:8]}.example"
    resolver.script[host] = ["127.0.0.1"]
    path = f"/hooks/{uuid.uuid4().hex}"
    result = sender(allow_private=True).send(delivery(f"http://{host}:{target.port}{path}"))
    assert result.ok, result
    assert len(target.requests(path)) == 1
