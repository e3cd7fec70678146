"""Real browser: JupyterLab on a free port, driven in Debian's Chromium by Playwright.

The quick-start test opens ``notebooks/01-quickstart.ipynb`` (a copy, so the
committed outputs stay untouched), runs every cell, fills the
``SubscriptionForm`` like a person would, clicks create, and then checks the
rendered table and the sandbox itself. The kernel finds the sandbox through
``LINQ_API_BASE_URL`` and ``LINQ_INTEGRATION_TOKEN`` set in JupyterLab's
environment, so the notebook's ``linq_nb.connect()`` talks to a Sandbox that
this test owns and can inspect.

A smaller test runs a throwaway notebook with a button and a text field: when
it fails, the problem is JupyterLab, Chromium or the widget bridge, not linq_nb.

Without ``/usr/bin/chromium`` or the ``playwright`` package these tests skip,
except when ``CI`` is set: there a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._browser import chromium, free_port, unavailable  # noqa: F401 (chromium: a fixture)

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
QUICKSTART = "01-quickstart.ipynb"
BROWSER_TOKEN = "sandbox_browser_test_token"
HOOK_URL = "https://example.com/hooks/from-the-browser"
STARTUP_TIMEOUT = 90.0  # seconds; generous for a cold, busy 2-core CI machine
RUN_ALL_TIMEOUT = 180.0


# --------------------------------------------------------------------------- JupyterLab


class JupyterLab:
    """A JupyterLab server in a subprocess with its own config, data, runtime and settings folders."""

    def __init__(self, root: Path, state: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.state = state
        self.extra_env = env or {}
        self.token = secrets.token_hex(16)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = state / "jupyterlab.log"
        self.started_in = 0.0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}?token={self.token}"

    def _prepare_dirs(self) -> dict[str, str]:
        dirs = {name: self.state / name for name in ("config", "data", "runtime", "settings", "workspaces")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        # No news/update pop-ups (they would also try the network).
        labconfig = dirs["config"] / "labconfig"
        labconfig.mkdir(exist_ok=True)
        (labconfig / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
        )
        # Keep every cell in the DOM, so selectors see cells that are scrolled away.
        tracker = dirs["settings"] / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True, exist_ok=True)
        (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        return {k: str(v) for k, v in dirs.items()}

    def start(self) -> JupyterLab:
        dirs = self._prepare_dirs()
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": dirs["config"],
            "JUPYTER_DATA_DIR": dirs["data"],
            "JUPYTER_RUNTIME_DIR": dirs["runtime"],
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            **self.extra_env,
        }
        t0 = time.monotonic()
        for _ in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            cmd = [
                sys.executable, "-m", "jupyterlab",
                "--no-browser", "--ServerApp.open_browser=False",
                "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root}",
                f"--LabApp.user_settings_dir={dirs['settings']}",
                f"--LabApp.workspaces_dir={dirs['workspaces']}",
            ]  # fmt: skip
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                cmd.append("--allow-root")
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT)
            if self._wait_until_ready():
                self.started_in = time.monotonic() - t0
                return self
        raise RuntimeError(f"JupyterLab did not start; its log:\n{self.log_tail()}")

    def _wait_until_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url("/api/status"), timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {STARTUP_TIMEOUT:.0f} s; its log:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: Jupyter shuts its kernels down
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


# --------------------------------------------------------------------------- Chromium


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:  # noqa: F811 (the fixture from tests._browser)
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def open_notebook(page: Any, lab: JupyterLab, name: str) -> None:
    """Open a notebook in JupyterLab and wait until its kernel is connected and idle."""
    page.goto(lab.url(f"/lab/tree/{name}"))
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(state="visible", timeout=60_000)
    # A notebook without kernelspec metadata asks which kernel to use.
    select = page.locator(".jp-Dialog button.jp-mod-accept")
    if select.count():
        select.first.click()
    wait_for_kernel_idle(page, timeout=60.0)


def wait_for_kernel_idle(page: Any, timeout: float) -> None:
    """Both the toolbar's execution indicator and the status bar ("Python 3 (ipykernel) | Idle") say idle."""
    page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        state="attached", timeout=timeout * 1000
    )
    page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\|\s*Idle")).first.wait_for(timeout=timeout * 1000)


_PROMPTS = "[...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]"


def run_all_cells(page: Any, timeout: float = RUN_ALL_TIMEOUT) -> float:
    """Run > Run All Cells, then wait until every code cell has an execution count. Returns seconds taken."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    t0 = time.monotonic()
    for _ in range(3):
        page.locator(".jp-NotebookPanel .jp-Notebook").first.click()
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:  # a busy Lab can swallow the command: retry only while no cell has started
            page.wait_for_function(f"() => {_PROMPTS}.some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))",
                                   timeout=20_000)  # fmt: skip
            break
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    else:
        raise AssertionError("Run > Run All Cells started no cell, three times")
    page.wait_for_function(
        f"""() => {{
            const prompts = {_PROMPTS};
            const failed = document.querySelector(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] .ansi-red-fg");
            // Lab stops at the first error, leaving later cells unrun: stop waiting then too.
            return prompts.length > 0 && (failed || prompts.every(p => /\\[\\d+\\]/.test(p.textContent)));
        }}""",
        timeout=timeout * 1000,
    )
    wait_for_kernel_idle(page, timeout=timeout)
    return time.monotonic() - t0


def error_outputs(page: Any) -> list[str]:
    """Tracebacks shown in the notebook (the error mime type, as Lab renders it)."""
    loc = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    return [t for t in loc.all_inner_texts() if "Traceback" in t or "Error" in t]


def screenshot(page: Any, path: Path, record: Callable[[str, object], None] | None = None) -> Path:
    """Save a screenshot; ``record`` (the ``record_property`` fixture) lists it at the end of the pytest run."""
    page.screenshot(path=str(path))
    print(f"\nscreenshot: {path}")
    if record is not None:
        record("screenshot", str(path))
    return path


@contextlib.contextmanager
def diagnosed(page: Any, lab: JupyterLab, path: Path,
              record: Callable[[str, object], None] | None = None) -> Iterator[None]:
    """On failure, save a screenshot to `path` and print the tail of JupyterLab's log; always stop Lab."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            screenshot(page, path, record)
        print(f"JupyterLab log tail:\n{lab.log_tail()}")
        raise
    finally:
        lab.stop()


# --------------------------------------------------------------------------- tests

SMOKE_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": [
                "import ipywidgets as w\n",
                "text = w.Text(description='Name', placeholder='type a name')\n",
                "button = w.Button(description='Say hello')\n",
                "out = w.Output()\n",
                "button.on_click(lambda _: out.append_stdout(f'hello {text.value}\\n'))\n",
                "w.VBox([text, button, out])",
            ],
        },
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ["print(6 * 7)"]},
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_lab_runs_a_widget_notebook(tmp_path: Path, page: Any, record_property: Any) -> None:
    """The harness itself: Lab starts, a notebook runs, a widget takes input and answers through the kernel."""
    root = tmp_path / "notebooks"
    root.mkdir()
    (root / "smoke.ipynb").write_text(json.dumps(SMOKE_NOTEBOOK))
    lab = JupyterLab(root, tmp_path / "jupyter").start()
    with diagnosed(page, lab, tmp_path / "smoke-failure.png", record_property):
        print(f"\nJupyterLab answered in {lab.started_in:.2f} s")
        open_notebook(page, lab, "smoke.ipynb")
        took = run_all_cells(page)
        print(f"run all cells: {took:.2f} s")
        assert "42" in page.locator(".jp-OutputArea-output").all_inner_texts()[-1]
        page.get_by_placeholder("type a name").fill("browser")
        page.get_by_placeholder("type a name").press("Tab")
        page.get_by_role("button", name="Say hello").click()
        page.locator(".widget-output", has_text="hello browser").wait_for()
        screenshot(page, tmp_path / "smoke.png", record_property)
        assert not error_outputs(page)


# What the quick-start form test needs from the notebook and the widgets (see the module docstring):
# a displayed SubscriptionForm that the notebook's own code does not submit, with a text field for the
# URL (placeholder or label mentioning "URL" / "https://"), a multi-select of events whose option labels
# start with the event name, and a button labelled "Create subscription"; and, below it, a displayed
# SubscriptionManager (a table of subscriptions) with a "Refresh" button.
FORM_EVENTS = ["message.received", "message.sent"]
# SubscriptionForm's submit button says "Create subscription"; never its "Create anyway".
CREATE_LABEL = re.compile(r"^\s*Create( subscription)?\s*$")


def _form_url_input(page: Any) -> Any:
    """The form's webhook URL field: found by placeholder or label, whatever the exact wording."""
    outputs = page.locator(".jp-OutputArea-output")
    for selector in ("input[placeholder*='http' i]", "input[placeholder*='url' i]", "input[type='url']"):
        found = outputs.locator(selector)
        if found.count():
            return found.first
    labelled = outputs.locator(".widget-text", has_text=re.compile(r"url", re.I))
    assert labelled.count(), "no webhook URL field found in the notebook's outputs"
    return labelled.first.locator("input").first


def _select_events(page: Any, events: list[str]) -> None:
    """Pick events in the form's multi-select (the one listing event names; labels may add a meaning)."""
    selects = page.locator(".jp-OutputArea-output select[multiple]")
    for i in range(selects.count()):
        select = selects.nth(i)
        values = select.evaluate(
            """(el, wanted) => [...el.options].filter(o => {
                    const label = o.textContent.replace(/\\s+/g, ' ').trim();  // ipywidgets uses &nbsp;
                    return wanted.some(w => label === w || label.startsWith(w + ' ') || label.startsWith(w + ':')
                                            || label.includes('(' + w + ')'));
                }).map(o => o.value)""",
            events,
        )
        if len(values) == len(events):
            select.scroll_into_view_if_needed()
            select.select_option(values)
            return
    raise AssertionError(f"no multi-select in the notebook offers the events {events}")


def _table_rows_with(page: Any, text: str) -> int:
    """Rows of a rendered table (not a subscription card) that contain `text`."""
    return int(
        page.evaluate(
            """(text) => [...document.querySelectorAll('.jp-OutputArea-output table tr')]
                .filter(tr => !tr.closest('.linq-subscription') && tr.textContent.includes(text)).length""",
            text,
        )
    )


def test_quickstart_form_creates_a_subscription(tmp_path: Path, page: Any, record_property: Any) -> None:
    """Run 01-quickstart in Lab, create a subscription with its form, see it in the table and the sandbox."""
    from linq_nb.sandbox import Sandbox

    assert (NOTEBOOKS / QUICKSTART).exists(), f"{NOTEBOOKS / QUICKSTART} is missing"
    root = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    with Sandbox(tokens=[BROWSER_TOKEN], retry_delays=[0.05]) as sandbox:
        env = {"LINQ_API_BASE_URL": sandbox.url, "LINQ_INTEGRATION_TOKEN": BROWSER_TOKEN}
        lab = JupyterLab(root, tmp_path / "jupyter", env=env).start()
        with diagnosed(page, lab, tmp_path / "quickstart-failure.png", record_property):
            print(f"\nJupyterLab answered in {lab.started_in:.2f} s")
            open_notebook(page, lab, QUICKSTART)
            took = run_all_cells(page)
            print(f"{QUICKSTART}: all cells ran in {took:.2f} s")
            assert not error_outputs(page), error_outputs(page)
            assert not [s for s in sandbox.subscriptions() if s["webhook_url"] == HOOK_URL]

            url_input = _form_url_input(page)
            url_input.scroll_into_view_if_needed()
            # A long reason no longer squeezes the buttons: each shows its whole label.
            url_input.fill("https://example.com/" + "a-rather-long-path/" * 8 + " with a space")
            url_input.press("Tab")
            page.locator(".jp-OutputArea-output", has_text="Correct the Webhook URL above").first.wait_for()
            squeezed = page.evaluate(
                """() => [...document.querySelectorAll('.jp-OutputArea-output button.widget-button')]
                    .filter(b => b.offsetParent !== null && b.scrollWidth > b.clientWidth + 1)
                    .map(b => b.textContent.trim())"""
            )
            assert not squeezed, f"buttons with a cut-off label: {squeezed}"
            beside = page.evaluate(
                """() => {
                    const button = [...document.querySelectorAll('.jp-OutputArea-output button.widget-button')]
                        .find(b => b.textContent.includes('Create subscription') && b.offsetParent !== null);
                    const reason = [...document.querySelectorAll('.jp-OutputArea-output .widget-html')]
                        .find(h => h.textContent.includes('Correct the Webhook URL above'));
                    return reason.getBoundingClientRect().top < button.getBoundingClientRect().bottom - 1;
                }"""
            )
            assert not beside, "the reason shares the buttons' row, where a long one squeezes them"
            create = page.locator(".jp-OutputArea-output button.widget-button", has_text=CREATE_LABEL)
            create.first.scroll_into_view_if_needed()
            screenshot(page, tmp_path / "quickstart-form-reason.png", record_property)
            url_input.fill(HOOK_URL)
            url_input.press("Tab")  # commit the value even if the widget syncs on change only
            _select_events(page, FORM_EVENTS)
            create.first.wait_for()
            page.wait_for_function("(b) => !b.disabled", arg=create.first.element_handle(), timeout=15_000)
            create.first.click()

            # The form shows the new subscription as a card ...
            card = page.locator(".linq-subscription", has_text=HOOK_URL).first
            card.wait_for(timeout=30_000)
            card.scroll_into_view_if_needed()
            screenshot(page, tmp_path / "quickstart-form.png", record_property)
            # ... the sandbox has it, exactly once, with the events picked in the browser ...
            created = [s for s in sandbox.subscriptions() if s["webhook_url"] == HOOK_URL]
            assert len(created) == 1, created
            assert sorted(created[0]["events"]) == sorted(FORM_EVENTS)
            # ... and the rendered table lists it (after a refresh, if the manager has the button).
            refresh = page.locator(".jp-OutputArea-output button.widget-button", has_text=re.compile("Refresh"))
            if refresh.count():
                refresh.last.click()
            page.wait_for_function(
                """(text) => [...document.querySelectorAll('.jp-OutputArea-output table tr')]
                    .some(tr => !tr.closest('.linq-subscription') && tr.textContent.includes(text))""",
                arg=HOOK_URL,
                timeout=30_000,
            )
            assert _table_rows_with(page, HOOK_URL) >= 1
            page.locator(".jp-OutputArea-output table tr", has_text=HOOK_URL).last.scroll_into_view_if_needed()
            screenshot(page, tmp_path / "quickstart.png", record_property)
            assert not error_outputs(page), error_outputs(page)
