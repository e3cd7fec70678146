"""Start-up: ``import linq_nb`` vs ``import requests``, and how soon ``linq-nb sandbox`` answers.

    python bench/bench_startup.py

Each import runs in a fresh ``python -c`` (best of N, interleaved), so the figure is
the interpreter plus the import, as a learner's first cell pays it. ``import linq_nb``
alone is lazy (it loads nothing until a name is used), so a second row times
``from linq_nb import LinqClient``, which does load requests: the honest comparison. The
import must not load pandas or ipywidgets (they load when a frame or widget is first
used); a separate row checks that. The sandbox row times ``linq-nb sandbox`` from spawn
to its first 200 on ``/_sandbox/health``, against a bare werkzeug server (the same
``make_server``, a one-line app) started the same way.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from classroom import REPO, free_port
from run_all import print_table, row

RUNS = 15
SERVER_RUNS = 5
TARGET = 1.5
BARE_SERVER = (
    "import sys\n"
    "from werkzeug.serving import make_server\n"
    "def app(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'application/json')])\n"
    "    return [b'{\"ok\": true}']\n"
    "make_server('127.0.0.1', int(sys.argv[1]), app, threaded=True).serve_forever()\n"
)


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _time_cmd(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def import_times(*codes: str, runs: int = RUNS) -> list[float]:
    """Best-of-``runs`` seconds for ``python -c CODE`` for each code, interleaved (order rotating)."""
    for code in codes:  # warm the page cache and the .pyc files
        _time_cmd([sys.executable, "-c", code])
    times: list[list[float]] = [[] for _ in codes]
    for i in range(runs):
        for j in range(len(codes)):
            k = (i + j) % len(codes)
            times[k].append(_time_cmd([sys.executable, "-c", codes[k]]))
    return [min(t) for t in times]


def heavy_modules_loaded() -> list[str]:
    """Which of pandas/ipywidgets/numpy a bare ``import linq_nb`` loads (should be none)."""
    code = ("import sys, linq_nb; print(' '.join(m for m in ('pandas', 'ipywidgets', 'numpy', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=_env(), capture_output=True,
                         text=True).stdout
    return out.split()


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/_sandbox/health")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except (OSError, http.client.HTTPException):
        return False


def _until_answers(cmd: list[str], port: int, timeout: float = 30.0) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            with socket.socket() as s:  # cheap probe first; the HTTP check only once the port is open
                s.settimeout(0.2)
                open_ = s.connect_ex(("127.0.0.1", port)) == 0
            if open_ and _answers(port):
                return time.perf_counter() - t0
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:4]} exited with {proc.returncode}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"{cmd[:4]} did not answer within {timeout} s")
            time.sleep(0.002)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def sandbox_start_times(runs: int = SERVER_RUNS) -> tuple[float, float]:
    """Best-of-``runs`` seconds from spawn to the first 200: ``linq-nb sandbox`` vs a bare werkzeug server."""
    script = Path(sys.executable).with_name("linq-nb")
    linq_nb_cmd = [str(script)] if script.exists() else (
        [shutil.which("linq-nb") or ""] if shutil.which("linq-nb") else [sys.executable, "-m", "linq_nb"])
    a, b = [], []
    for _ in range(runs):
        port = free_port()
        a.append(_until_answers([*linq_nb_cmd, "sandbox", "--port", str(port), "--token", "t"], port))
        port = free_port()
        b.append(_until_answers([sys.executable, "-c", BARE_SERVER, str(port)], port))
    return min(a), min(b)


def run() -> list[dict[str, Any]]:
    t_linq, t_client, t_requests = import_times("import linq_nb", "from linq_nb import LinqClient",
                                                "import requests")
    heavy = heavy_modules_loaded()
    t_sandbox, t_bare = sandbox_start_times()
    return [
        row("start-up: python -c 'import linq_nb' vs 'import requests' (best of 15)", t_linq * 1000,
            t_requests * 1000, "ms", f"ratio <= {TARGET}", t_linq / t_requests <= TARGET),
        row("start-up: python -c 'from linq_nb import LinqClient' (loads requests) vs 'import requests'",
            t_client * 1000, t_requests * 1000, "ms", f"ratio <= {TARGET}", t_client / t_requests <= TARGET),
        row("start-up: heavy modules loaded by import linq_nb (pandas, ipywidgets, numpy, matplotlib)",
            ", ".join(heavy) or "none", None, "", "none", not heavy),
        row("start-up: linq-nb sandbox until /_sandbox/health answers vs bare werkzeug server (best of 5)",
            t_sandbox * 1000, t_bare * 1000, "ms", "report", None),
    ]


if __name__ == "__main__":
    print_table(run(), "Start-up")
