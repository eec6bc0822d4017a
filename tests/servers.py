"""Start real servers (MLflow, Prefect) on free loopback ports and always tear them down.

Every process is started in its own session, so teardown can signal its whole process group:
servers fork workers (gunicorn, uvicorn, Prefect services) that must not outlive a test.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

VENV_BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def venv_env(**extra: str) -> dict[str, str]:
    """The current environment with the venv's bin first on PATH and telemetry off."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return env


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `grace_s`."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if pgid is not None:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
        try:
            proc.wait(timeout=grace_s)
            if pgid is None or not _group_alive(pgid):
                return
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=grace_s)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@contextmanager
def background(cmd: list[str], log_path: Path, env: dict[str, str], cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """Run `cmd` in its own process group with output in `log_path`; stop the group on exit."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
    try:
        yield proc
    finally:
        stop_group(proc)
        log.close()


def wait_http(url: str, proc: subprocess.Popen, log_path: Path, timeout_s: float = 90.0) -> None:
    """Poll `url` until it answers 200; fail early (with the log) if the server process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s:\n{tail(log_path)}")


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@contextmanager
def mlflow_server(workdir: Path) -> Iterator[str]:
    """A real `mlflow server` on a SQLite store in `workdir`; yields its tracking URI."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        str(VENV_BIN / "mlflow"), "server", "--host", LOOPBACK, "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination", str(workdir / "artifacts"), "--serve-artifacts",
    ]
    log_path = workdir / "mlflow-server.log"
    with background(cmd, log_path, venv_env(), cwd=workdir) as proc:
        url = f"http://{LOOPBACK}:{port}"
        wait_http(f"{url}/health", proc, log_path)
        yield url


@contextmanager
def prefect_server(workdir: Path) -> Iterator[dict[str, str]]:
    """A real `prefect server` with its home and SQLite database in `workdir`.

    Yields the environment a client (CLI, worker, flow) needs to talk to it.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://{LOOPBACK}:{port}/api"
    env = venv_env(
        PREFECT_HOME=str(workdir / "prefect-home"),
        PREFECT_API_URL=api_url,
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{workdir / 'prefect.db'}",
        PREFECT_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL="INFO",
    )
    cmd = [str(VENV_BIN / "prefect"), "server", "start", "--host", LOOPBACK, "--port", str(port)]
    log_path = workdir / "prefect-server.log"
    with background(cmd, log_path, env, cwd=workdir) as proc:
        wait_http(f"{api_url}/health", proc, log_path)
        yield env
