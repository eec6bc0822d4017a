"""Start real servers (MLflow; Prefect's is the session harness in conftest.py) on free loopback
ports and always tear them down.

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


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[19]


def descendants(pid: int) -> list[tuple[int, str]]:
    """Every live process below `pid` as (pid, start time), including ones in their own session,
    as Prefect's process worker starts each flow run. Linux /proc; empty elsewhere."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        stat = _stat(int(entry.name))
        if stat is not None:
            children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it after `grace_s`, then SIGKILL any descendant that
    had left the group (a process in its own session survives a group signal)."""
    strays = descendants(proc.pid)
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if pgid is not None:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
        try:
            proc.wait(timeout=grace_s)
            if not _group_alive(pgid):
                break
        except subprocess.TimeoutExpired:
            continue
    for pid, started in strays:
        stat = _stat(pid)
        if stat is not None and stat[1] == started:  # the same process, not a reused pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    proc.wait(timeout=grace_s)


def _group_alive(pgid: int | None) -> bool:
    if pgid is None:
        return False
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
    # The job runner (GenAI scorer jobs) is a second mlflow process no test uses: only startup CPU.
    env = venv_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    with background(cmd, log_path, env, cwd=workdir) as proc:
        url = f"http://{LOOPBACK}:{port}"
        # Import-heavy: on a busy 2-core machine startup alone has taken over 90 s.
        wait_http(f"{url}/health", proc, log_path, timeout_s=240)
        yield url


# --- A scratch checkout: the repository's files in a temporary git repo, on a tiny configuration.

REPO_ROOT = Path(__file__).resolve().parents[1]
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "mosaic-it tests", "GIT_AUTHOR_EMAIL": "tests@localhost",
                "GIT_COMMITTER_NAME": "mosaic-it tests", "GIT_COMMITTER_EMAIL": "tests@localhost"}


def tiny_params(model_dir: Path | None, records_file: str = "data/tiny.json") -> dict:
    """params.yaml with every stage shrunk to seconds: a few records, two optimizer steps, tiny evals.

    `model_dir` None trains the real embedded model; a path trains that (e.g. a random tiny Llama).
    """
    import yaml

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    shrink = {
        "validate": {"input": records_file, "max_tokens": 512},
        "split": {"heldout_fraction": 0.1},
        "augment": {"epochs": 1, "max_instructions": 3, "max_tokens": 256},
        "train": {"arm": "mosaic", "data": params["augment"]["output"], "model": str(model_dir) if model_dir else None,
                  "max_length": 96, "max_steps": 2, "batch_size": 2, "save_every": 0, "sample_prompts": [],
                  "sample_max_new_tokens": 0},
        "evaluate": {"evals": ["heldout", "ifeval"], "heldout_limit": 2, "heldout_max_tokens": 96, "ifeval_limit": 1,
                     "generation": {**params["evaluate"]["generation"], "max_new_tokens": 4, "batch_size": 2}},
        "tracking": {"tracking_uri": "sqlite:///mlflow.db", "log_model": False},
    }
    for section, values in shrink.items():
        params.setdefault(section, {}).update(values)
    return params


def scratch_repo(target: Path, params: dict, records: int = 40) -> Path:
    """Copy the checkout's files (tracked and not ignored) into `target`, add `records` records as
    data/tiny.json and `params` as params.yaml, and commit it all in a fresh git repository."""
    import json
    import shutil

    import yaml

    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    sample = json.loads((REPO_ROOT / "data" / "alpaca_sample.json").read_text(encoding="utf-8"))
    (target / "data" / "tiny.json").write_text(json.dumps(sample[:records]), encoding="utf-8")
    (target / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    env = venv_env(**GIT_IDENTITY)
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "scratch"]):
        subprocess.run(cmd, cwd=target, env=env, check=True)
    return target
