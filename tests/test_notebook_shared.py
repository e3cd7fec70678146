"""Notebook 03 against a shared classroom sandbox, which cannot reach the kernel's receiver: it receives through the relay.

(nbval runs every notebook against the embedded sandbox; this runs 03 as a learner on Binder would.)
"""

from __future__ import annotations

import json
from pathlib import Path

import nbclient
import nbformat
import pytest

from linq_nb.sandbox import CLASSROOM_RETRY_DELAYS, Sandbox
from tests.conftest import SENTINEL_TOKEN

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03-deliveries-and-health.ipynb"


@pytest.mark.timeout(600)
def test_notebook_03_runs_unchanged_against_a_shared_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN, "tok_another_learner"], retry_delays=CLASSROOM_RETRY_DELAYS) as sb:
        assert sb.shared  # loopback receivers are refused: only the relay gets through
        monkeypatch.setenv("LINQ_API_BASE_URL", sb.url)
        monkeypatch.setenv("LINQ_INTEGRATION_TOKEN", SENTINEL_TOKEN)
        nb = nbformat.read(NOTEBOOK, as_version=4)
        nbclient.NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {
            "path": str(NOTEBOOK.parent)}}).execute()
        outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
        assert "all checks passed" in outputs
        assert SENTINEL_TOKEN not in outputs
        assert sb.subscriptions(SENTINEL_TOKEN) == []  # the temporary subscription went with the listener
        attempts = sb.deliveries(SENTINEL_TOKEN)
        assert attempts and not any("no connection made" in (a["error"] or "") for a in attempts)
