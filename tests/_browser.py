"""What the browser tests share: Debian's Chromium under Playwright, a free port, skip-or-fail.

Playwright drives ``/usr/bin/chromium`` (never a browser of Playwright's own download), headless.
Without it, or without the ``playwright`` package, a test skips, except when ``CI`` is set: there a
missing browser is a failure.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("LINQ_NB_CHROMIUM", "/usr/bin/chromium")
# Headless as root; the network flags stop Chromium calling home on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so a missing browser is a failure, not a skip")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright (never Playwright's own browser download)."""
    if not os.path.exists(CHROMIUM):
        unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as pw:
        t0 = time.monotonic()
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        print(f"\nChromium {browser.version} launched in {time.monotonic() - t0:.2f} s")
        try:
            yield browser
        finally:
            browser.close()
