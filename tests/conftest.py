"""Shared fixtures: real servers on free ports, never mocks of our own HTTP layer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Sentinels: tests search every output for these and must never find them.
SENTINEL_TOKEN = "tok_SENTINEL_5d1e7a_never_show_me"
SENTINEL_SECRET = "whsec_SENTINEL_9c2f4b_never_show_me"
RECEIVER_SECRET = "whsec_test"


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
