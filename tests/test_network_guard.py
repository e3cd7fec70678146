"""The network guard of tests/conftest.py: no test reaches beyond loopback, not even by accident.

The blocked cases replace the guard's "real" connect with a recorder first, so that even a broken guard
sends nothing anywhere: the test then fails on the recorder instead.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from linq_nb.client import LinqClient
from linq_nb.errors import LinqConnectionError
from tests.conftest import SENTINEL_TOKEN

OUTSIDE = ("192.0.2.1", 443)  # TEST-NET-1 (RFC 5737): routed nowhere; and the recorder stands in anyway
GUARD = socket.socket.connect.__globals__  # the guard's module, whichever copy of conftest installed it
NetworkBlockedError = GUARD["NetworkBlockedError"]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """What would have reached the real socket layer, instead of reaching it; the record is cleared after."""
    installed = GUARD
    reached: list[Any] = []
    monkeypatch.setitem(installed, "_real_connect", lambda sock, address: reached.append(address))
    monkeypatch.setitem(installed, "_real_connect_ex", lambda sock, address: reached.append(address) or 0)
    real_getaddrinfo = installed["_real_getaddrinfo"]

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if installed["_is_ip_literal"](str(host)):  # a literal needs no DNS: resolve it as usual
            return real_getaddrinfo(host, *args, **kwargs)
        reached.append(host)
        return []

    monkeypatch.setitem(installed, "_real_getaddrinfo", getaddrinfo)
    yield reached
    del installed["_blocked"][:]  # the attempts below are on purpose: do not fail the test for them


def test_a_connect_outside_this_machine_is_refused_before_it_is_made(recorder: list[Any]) -> None:
    for connect in (socket.socket.connect, socket.socket.connect_ex):
        with socket.socket() as s, pytest.raises(NetworkBlockedError, match="outside this machine"):
            connect(s, OUTSIDE)
    with pytest.raises(NetworkBlockedError):
        socket.create_connection(OUTSIDE, timeout=1)
    assert recorder == []


def test_a_name_other_than_localhost_is_not_even_resolved(recorder: list[Any]) -> None:
    with pytest.raises(socket.gaierror, match="outside this machine"):
        socket.getaddrinfo("api.linqapp.com", 443)
    assert recorder == []


def test_the_guard_fails_a_test_whose_thread_tried_to_leave(recorder: list[Any]) -> None:
    installed = GUARD

    def attempt() -> None:
        with socket.socket() as s, pytest.raises(NetworkBlockedError):
            s.connect(OUTSIDE)

    t = threading.Thread(target=attempt)
    t.start()
    t.join()
    assert installed["_blocked"] == [f"connect to {OUTSIDE!r}"]  # the autouse fixture fails on this record


def test_the_live_api_is_out_of_reach_even_without_the_warning(recorder: list[Any]) -> None:
    live = LinqClient(token=SENTINEL_TOKEN, max_retries=0)
    assert live.mode == "live"
    with pytest.raises(LinqConnectionError):
        live.list_subscriptions()  # no warning stands in the way of a GET
    live.close()
    assert recorder == []


def test_loopback_and_unix_sockets_are_allowed(tmp_path: Any) -> None:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            server = socket.socket(family)
            server.bind((host, 0))
        except OSError:  # no IPv6 on this machine
            continue
        with server:
            server.listen()
            with socket.create_connection(server.getsockname()[:2], timeout=2):
                pass
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(("localhost", server.getsockname()[1]), timeout=2):
            pass
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen()
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(path)
