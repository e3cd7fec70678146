"""Real browser: the support app served by ``linq-nb app`` (Voilà) on a free port, driven in Chromium.

The app starts as a person starts it, with no token set, so it shows its demo account (one
subscription in each state). The test checks that the page renders every card with no error
output and no code, deactivates the working subscription with its button, sees its state and
triage line change, and saves a screenshot whose path it prints and reports in the test's
``user_properties`` (``-rA`` or a JUnit report shows it). Then it pastes the address of a
sandbox it owns and the sentinel token into the masked field, sees that account, and finds
the token neither in the page nor in the app's log.

Same conventions as ``tests/test_browser.py``: Playwright drives Debian's Chromium
(``/usr/bin/chromium``, never a Playwright download), headless; without it the test skips,
except when ``CI`` is set: there a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._browser import chromium, free_port, unavailable  # noqa: F401 (chromium: a fixture)
from tests.conftest import SENTINEL_TOKEN

pytestmark = pytest.mark.browser

STARTUP_TIMEOUT = 90.0  # seconds; a cold, busy 2-core machine starts Voila and a kernel slowly
RENDER_TIMEOUT = 120.0  # the kernel starts the demo account and draws five plots before the page shows them
STATES = ("Failing", "Nothing sent yet", "Quiet", "Switched off", "Working")


class App:
    """``linq-nb app --port P --no-browser`` in its own process group, with private Jupyter folders."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.log = state / "voila.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> App:
        self.state.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINQ_")}  # the demo account, always
        env.update(
            JUPYTER_CONFIG_DIR=str(self.state / "config"),
            JUPYTER_DATA_DIR=str(self.state / "data"),
            JUPYTER_RUNTIME_DIR=str(self.state / "runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            PYDEVD_DISABLE_FILE_VALIDATION="1",
            MPLBACKEND="Agg",
        )
        for _ in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            cmd = [sys.executable, "-m", "linq_nb", "app", "--port", str(self.port), "--no-browser"]
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)  # fmt: skip
            if self._wait_until_listening():
                return self
        raise RuntimeError(f"the app did not start; its log:\n{self.log_tail()}")

    def _wait_until_listening(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:  # listening (the page itself would start a kernel)
                with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                    return True
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the app did not answer within {STARTUP_TIMEOUT:.0f} s; its log:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # Voila and the kernel it started
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:  # noqa: F811 (the fixture from tests._browser)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def error_outputs(page: Any) -> list[str]:
    """What Voilà shows when a cell fails: stderr or error outputs, or its "There was an error" notice."""
    found = page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"
    ).all_inner_texts()
    body = page.locator("body").inner_text()
    if "There was an error when executing cell" in body or "Traceback" in body:
        found.append(body[:2000])
    return found


def screenshot(page: Any, path: Path) -> Path:
    """The whole app, top to bottom (Voilà's page scrolls inside, so the viewport is made tall enough)."""
    with contextlib.suppress(Exception):
        height = page.evaluate("() => document.querySelector('.linq-support-dashboard').scrollHeight")
        page.set_viewport_size({"width": page.viewport_size["width"], "height": int(height) + 120})
        page.evaluate("() => document.querySelector('.linq-support-dashboard').scrollIntoView()")
    page.screenshot(path=str(path), full_page=True)
    print(f"\nscreenshot: {path}")
    return path


def card(page: Any, text: str) -> Any:
    return page.locator(".linq-support-card", has_text=text).first


def test_support_app_renders_and_deactivates(tmp_path: Path, page: Any, record_property: Any) -> None:
    app = App(tmp_path / "app").start()
    try:
        t0 = time.monotonic()
        page.goto(app.url)
        page.locator(".linq-support-card").nth(4).wait_for(timeout=RENDER_TIMEOUT * 1000)
        print(f"\nthe app showed its five subscriptions {time.monotonic() - t0:.1f} s after the page was opened")
        assert not error_outputs(page), error_outputs(page)
        text = page.locator("body").inner_text()
        assert "Webhook support desk" in text
        assert "demo account" in text
        for state in STATES:
            assert page.locator(".linq-state", has_text=re.compile(f"^{state}$")).count() == 1, state
        # No code on the page: Voilà strips the cell's source.
        assert "SupportDashboard" not in text and not page.locator(".jp-InputArea, .jp-CodeMirrorEditor").count()
        # A plot per subscription, drawn (an <img> with a PNG in it).
        assert page.locator(".linq-support-card img").count() == 5
        page.wait_for_function(
            "() => [...document.querySelectorAll('.linq-support-card img')].every(i => i.naturalWidth > 0)")

        orders = card(page, "/hooks/orders")
        assert orders.locator(".linq-state").inner_text() == "Working"
        assert "Nothing to do" in orders.locator(".linq-triage").inner_text()
        orders.get_by_role("button", name="Deactivate").click()

        orders.locator(".linq-state", has_text="Switched off").wait_for(timeout=30_000)
        orders.locator(".linq-triage", has_text="Linq sends this endpoint nothing").wait_for()
        orders.locator(".linq-result", has_text="is switched off").wait_for()
        assert orders.get_by_role("button", name="Activate").is_visible()
        assert not orders.get_by_role("button", name="Deactivate").is_visible()
        assert page.locator(".linq-state", has_text=re.compile("^Switched off$")).count() == 2
        assert "2 switched off" in page.locator("body").inner_text()  # the summary counts again
        assert not error_outputs(page), error_outputs(page)
        shot = screenshot(page, tmp_path / "support-app.png")
        record_property("screenshot", str(shot))

        # Another account: a sandbox this test owns, its address and token pasted into the page.
        from linq_nb.client import LinqClient
        from linq_nb.sandbox import Sandbox

        with Sandbox(tokens=[SENTINEL_TOKEN]) as sandbox:
            with LinqClient(token=SENTINEL_TOKEN, base_url=sandbox.url) as client:
                client.create_subscription("https://example.com/hooks/from-the-test", ["message.read"])
            page.get_by_text("Look at another account").click()
            page.get_by_placeholder("empty for the live API", exact=False).fill(sandbox.url)
            token_field = page.get_by_placeholder("paste the integration token")
            assert token_field.get_attribute("type") == "password"  # masked
            token_field.fill(SENTINEL_TOKEN)
            page.get_by_role("button", name="Use this token").click()
            card(page, "/hooks/from-the-test").wait_for(timeout=30_000)
            assert page.locator(".linq-support-card").count() == 1
            assert sandbox.url in page.locator(".linq-where").inner_text()
            assert token_field.input_value() == ""
            assert SENTINEL_TOKEN not in page.content()
            assert not error_outputs(page), error_outputs(page)
        assert SENTINEL_TOKEN not in app.log.read_text(errors="replace")
    except BaseException:
        with contextlib.suppress(Exception):
            screenshot(page, tmp_path / "support-app-failure.png")
        print(f"app log tail:\n{app.log_tail()}")
        raise
    finally:
        app.stop()
