"""What Binder serves is what was tested: binder/requirements.txt alone, in a fresh virtual environment.

The test creates a new venv, installs exactly ``binder/requirements.txt``, runs
``binder/postBuild`` (which installs the package without dependencies), checks
with ``pip check`` that the pins cover every dependency, and then executes each
notebook there with ``jupyter nbconvert --execute``, and renders the support app
at the README's Voila URL (``/voila/render/apps/support.ipynb``) through that
venv's Jupyter server, as Binder would. It needs only what pip can fetch; it
takes a minute or so, hence the ``slow`` marker.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # pip on a cold machine can be slow

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
NOTEBOOKS = ROOT / "notebooks"
LANDING = "01-quickstart.ipynb"  # the README's Binder link opens it
APP_URL = "/voila/render/apps/support.ipynb"  # the README's Binder link to the support app
CELL_TIMEOUT = 120  # seconds, per cell
RUN_TIMEOUT = 600  # seconds, all notebooks


def _run(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> float:
    """Run a command, fail the test with its output if it fails; returns seconds taken."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd)} took more than {timeout} s\n{exc.stdout or ''}\n{exc.stderr or ''}")
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}"
                    f"\n--- stderr\n{proc.stderr[-6000:]}")  # fmt: skip
    return time.monotonic() - t0


def test_binder_requirements_run_every_notebook(tmp_path: Path) -> None:
    notebooks = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    assert (NOTEBOOKS / LANDING) in notebooks, f"{LANDING}, the Binder landing page, is missing"
    assert os.access(BINDER / "postBuild", os.X_OK), "binder/postBuild must be executable"

    venv = tmp_path / "venv"
    bin_dir = venv / "bin"
    # Nothing from the developer's setup leaks in: no user site, no user kernels, no live token.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINQ_", "JUPYTER", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        PYTHONNOUSERSITE="1",
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        MPLBACKEND="Agg",
    )
    times = {"venv": _run([sys.executable, "-m", "venv", str(venv)], env=env, cwd=tmp_path, timeout=120)}
    pip = [str(bin_dir / "python"), "-m", "pip", "--disable-pip-version-check"]
    times["requirements"] = _run(
        [*pip, "install", "--quiet", "--no-compile", "-r", str(BINDER / "requirements.txt")],
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    times["postBuild"] = _run(["bash", str(BINDER / "postBuild")], env=env, cwd=ROOT, timeout=300)
    _run([*pip, "check"], env=env, cwd=ROOT, timeout=120)  # the pins cover linq-nb's own dependencies

    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    out = tmp_path / "executed"
    times["notebooks"] = _run(
        [
            "timeout", str(RUN_TIMEOUT), str(bin_dir / "jupyter"), "nbconvert",
            "--to", "notebook", "--execute", f"--ExecutePreprocessor.timeout={CELL_TIMEOUT}",
            "--ExecutePreprocessor.kernel_name=python3", f"--output-dir={out}",
            *[n.name for n in notebooks],
        ],
        env=env, cwd=work, timeout=RUN_TIMEOUT + 30,
    )  # fmt: skip
    assert sorted(p.name for p in out.glob("*.ipynb")) == [n.name for n in notebooks]
    print("\nbinder: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()) + f" ({len(notebooks)} notebooks)")
    times["support app"] = _render_app(bin_dir, env, tmp_path)
    print(f"binder: the support app rendered at {APP_URL} in {times['support app']:.1f} s")


def _render_app(bin_dir: Path, env: dict[str, str], tmp_path: Path) -> float:
    """Start that venv's Jupyter server at the repository root, as Binder does, and GET the app's Voila URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    cmd = [str(bin_dir / "jupyter"), "server", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={ROOT}"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = tmp_path / "jupyter-server.log"
    t0 = time.monotonic()
    with log.open("wb") as out:
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        page = ""
        while time.monotonic() < deadline and server.poll() is None:
            try:  # Voila answers once the notebook ran in a kernel: the page holds the dashboard's widget
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{APP_URL}?token={token}", timeout=90) as resp:
                    page = resp.read().decode("utf-8", "replace")
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        took = time.monotonic() - t0
        assert page, f"no answer from {APP_URL}; the server's log:\n{log.read_text(errors='replace')[-4000:]}"
        assert "There was an error when executing cell" not in page
        assert '"model_id"' in page and "SupportDashboard(" in page, page[-2000:]
        return took
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
