"""The notebook suite's wall time: each ``notebooks/*.ipynb`` executed top to bottom by nbconvert.

    python bench/bench_notebooks.py

Each notebook runs as ``timeout 600 jupyter nbconvert --execute --to notebook
--output-dir <tmp> --ExecutePreprocessor.timeout=120`` against the embedded sandbox
(no token in the environment). The baseline is an empty notebook run the same way:
the fixed cost of starting nbconvert and a kernel, so the ratio shows how much the
notebook's own cells add. Target (issue 2): each notebook runs in under a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from classroom import REPO
from run_all import print_table, row

NOTEBOOKS = REPO / "notebooks"
LIMIT_S = 60.0
EMPTY_NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "empty", "metadata": {}, "outputs": [],
               "source": "1 + 1"}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def _jupyter() -> str | None:
    beside = Path(sys.executable).with_name("jupyter")
    return str(beside) if beside.exists() else shutil.which("jupyter")


def _execute(jupyter: str, notebook: Path, out_dir: Path) -> tuple[float, str | None]:
    """Seconds to execute ``notebook``, and an error summary (None when it ran cleanly)."""
    cmd = [jupyter, "nbconvert", "--execute", "--to", "notebook", "--output-dir", str(out_dir),
           "--ExecutePreprocessor.timeout=120", "--ExecutePreprocessor.kernel_name=python3", str(notebook)]
    if shutil.which("timeout"):
        cmd = ["timeout", "600", *cmd]
    env = {k: v for k, v in os.environ.items() if k not in ("LINQ_INTEGRATION_TOKEN", "LINQ_API_BASE_URL")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=notebook.parent, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return elapsed, (lines[-1] if lines else f"exit code {proc.returncode}")[:160]
    return elapsed, None


def run() -> list[dict[str, Any]]:
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    if not notebooks:
        return [row("notebooks: no notebooks yet", None, None, "", f"< {LIMIT_S:.0f} s each", None)]
    jupyter = _jupyter()
    if jupyter is None:
        return [row("notebooks: jupyter not installed (pip install -e '.[test]')", None, None, "", "", None)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="linq-nb-notebooks-") as tmp:
        out_dir = Path(tmp)
        empty = out_dir / "empty.ipynb"
        empty.write_text(json.dumps(EMPTY_NOTEBOOK), encoding="utf-8")
        base, base_err = _execute(jupyter, empty, out_dir / "out")
        if base_err:
            return [row(f"notebooks: nbconvert cannot run even an empty notebook ({base_err})", None, None, "",
                        "runs", False)]
        total = 0.0
        for nb in notebooks:
            took, err = _execute(jupyter, nb, out_dir / "out")
            total += took
            name = f"notebook {nb.name}" + (f" FAILED: {err}" if err else "")
            rows.append(row(name, took, base, "s", f"< {LIMIT_S:.0f} s, runs clean", err is None and took < LIMIT_S))
        rows.append(row(f"notebook suite ({len(notebooks)} notebooks, one after another)", total,
                        base * len(notebooks), "s", "report", None))
    return rows


if __name__ == "__main__":
    print_table(run(), "Notebooks (nbconvert --execute; baseline: an empty notebook)")
