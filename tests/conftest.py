"""Shared fixtures: real servers on free ports, never mocks of our own HTTP layer."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Sentinels: tests search every output for these and must never find them.
SENTINEL_TOKEN = "tok_SENTINEL_5d1e7a_never_show_me"
SENTINEL_SECRET = "whsec_SENTINEL_9c2f4b_never_show_me"
RECEIVER_SECRET = "whsec_test"


# --------------------------------------------------------------------------- the network guard
# Nothing leaves this machine from a test. From the moment this file is imported (before any test runs), a
# connect to anything but loopback or a Unix socket raises NetworkBlockedError (an OSError, so a client
# or the sandbox treats it as a refused connection) and is recorded; the autouse fixture below then fails
# the test that made it, whichever thread it came from. Resolving a name other than localhost is refused
# too, so not even a DNS query goes out. Self-contained on purpose: it must not depend on the code it guards.


class NetworkBlockedError(OSError):
    """A test tried to reach an address outside this machine."""


_blocked: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _loopback_host(host: object) -> bool:
    if not isinstance(host, str):
        return False
    host = host.strip("[]").split("%", 1)[0].lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _refuse(what: str) -> NetworkBlockedError:
    _blocked.append(what)
    return NetworkBlockedError(f"network guard (tests/conftest.py): {what} is outside this machine; "
                               "tests may only reach loopback (127.0.0.0/8, ::1, localhost) or Unix sockets")


def _allowed(sock: socket.socket, address: Any) -> bool:
    if getattr(socket, "AF_UNIX", None) is not None and sock.family == socket.AF_UNIX:
        return True
    return isinstance(address, tuple) and bool(address) and _loopback_host(address[0])


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _allowed(self, address):
        raise _refuse(f"connect to {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _allowed(self, address):
        raise _refuse(f"connect to {address!r}")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name not in (None, "") and not _loopback_host(name) and not _is_ip_literal(name):
        raise socket.gaierror(socket.EAI_NONAME, str(_refuse(f"resolving {name!r}")))
    return _real_getaddrinfo(host, *args, **kwargs)


# pytest imports this file as `conftest`, and tests import it as `tests.conftest`: install the guard once
# and share one record of attempts between both copies.
_installed = getattr(socket.socket.connect, "blocked", None)
if _installed is None:
    _guarded_connect.blocked = _blocked  # type: ignore[attr-defined]
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo
else:
    _blocked = _installed


@pytest.fixture(autouse=True)
def _network_guard() -> Iterator[None]:
    """Fail the test if it (or a thread it started) tried to reach beyond loopback."""
    del _blocked[:]
    yield
    if _blocked:
        attempts = "; ".join(_blocked)
        del _blocked[:]
        pytest.fail(f"the test tried to leave this machine: {attempts}", pytrace=False)


@pytest.fixture(autouse=True)
def _no_live_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never talk to the live API, whatever the developer's shell has set."""
    monkeypatch.delenv("LINQ_INTEGRATION_TOKEN", raising=False)
    monkeypatch.delenv("LINQ_API_BASE_URL", raising=False)


@pytest.fixture
def sandbox() -> Iterator[object]:
    from linq_nb.sandbox import Sandbox

    with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[0.05, 0.1, 0.2]) as sb:
        yield sb


@pytest.fixture
def client(sandbox: object) -> Iterator[object]:
    from linq_nb.client import LinqClient

    c = LinqClient(token=SENTINEL_TOKEN, base_url=sandbox.url, backoff_factor=0.01)  # type: ignore[attr-defined]
    yield c
    c.close()


@pytest.fixture
def v3(sandbox: object) -> Iterator[object]:
    """A v3 client on the sandbox (lost-create recovery looks twice, quickly)."""
    from linq_nb.client_v3 import LinqClientV3

    c = LinqClientV3(token=SENTINEL_TOKEN, base_url=sandbox.url, backoff_factor=0.01)  # type: ignore[attr-defined]
    c.recovery_delays = (0.0, 0.1)
    yield c
    c.close()


@pytest.fixture
def receiver() -> Iterator[object]:
    from linq_nb.receiver import Receiver

    with Receiver(secrets=RECEIVER_SECRET) as r:
        yield r



@pytest.fixture
def make_client(sandbox: object) -> Iterator[Callable[..., object]]:
    """Clients bound to the sandbox with chosen settings; fast backoff; quick lost-create checks."""
    from linq_nb.client import LinqClient

    made: list[LinqClient] = []

    def make(**kwargs: Any) -> LinqClient:
        kwargs.setdefault("token", SENTINEL_TOKEN)
        kwargs.setdefault("base_url", sandbox.url)  # type: ignore[attr-defined]
        kwargs.setdefault("backoff_factor", 0.01)
        c = LinqClient(**kwargs)
        c.recovery_delays = (0.0, 0.1)  # quick: most tests know whether the create was stored
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the screenshots tests saved (``record_property("screenshot", path)``), even under xdist."""
    seen: dict[str, str] = {}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            for key, value in getattr(report, "user_properties", ()):
                if key == "screenshot":
                    seen.setdefault(str(value), report.nodeid)
    if seen:
        terminalreporter.section("screenshots")
        for path, nodeid in seen.items():
            terminalreporter.write_line(f"{path}  ({nodeid.rsplit('::', 1)[-1]})")
