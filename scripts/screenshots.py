"""Regenerate docs/img/*.png: what a user reviewing a run sees in the Prefect and MLflow UIs.

Starts loopback Prefect (with its UI) and MLflow servers in a temporary folder, runs the
`mosaic-it-compare` flow there on a tiny configuration (a random 2-layer Llama, a few records, two
steps per arm), takes headless-Chromium screenshots of the flow-run page and of MLflow's
experiment, run and registered-model pages, and always stops the servers. Needs Debian's
`chromium` package (`apt-get install -y chromium`). Run from the repository root:

    .venv/bin/python scripts/screenshots.py [--out docs/img]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the suite's loopback server helpers: one way to start and stop them

from servers import LOOPBACK, background, free_port, mlflow_server, scratch_repo, tiny_params, venv_env, wait_http  # noqa: E402

WIDTH, HEIGHT = 1440, 900
SHOWN_WIDTH = 960  # the PNGs are scaled to this width, palette-quantised, to stay small


def tiny_llama(target: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mosaic_it.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(None)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def prefect_ui_server(workdir: Path):
    """`prefect server start` with its UI, state in `workdir`; yields (client env, UI address)."""
    import contextlib

    @contextlib.contextmanager
    def run():
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        api = f"http://{LOOPBACK}:{port}/api"
        env = venv_env(PREFECT_HOME=str(workdir / "prefect-home"), PREFECT_API_URL=api,
                       PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{workdir / 'prefect.db'}",
                       PREFECT_UI_API_URL=api, PREFECT_UI_ENABLED="true")
        log = workdir / "prefect-server.log"
        cmd = [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", LOOPBACK, "--port", str(port)]
        with background(cmd, log, env, cwd=workdir) as proc:
            wait_http(f"{api}/health", proc, log, timeout_s=300)
            yield env, f"http://{LOOPBACK}:{port}"

    return run()


def latest_flow_run(api: str) -> str:
    request = urllib.request.Request(f"{api}/flow_runs/filter", method="POST",
                                     data=json.dumps({"limit": 1, "sort": "START_TIME_DESC"}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())[0]["id"]


def screenshot(chromium: str, url: str, target: Path, wait_ms: int = 20000) -> None:
    """A headless page capture, scaled down and quantised with Pillow."""
    from PIL import Image

    raw = target.with_suffix(".raw.png")
    subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--no-first-run", "--disable-extensions", f"--window-size={WIDTH},{HEIGHT}",
                    f"--virtual-time-budget={wait_ms}", f"--screenshot={raw}", url],
                   check=True, capture_output=True, timeout=180)
    image = Image.open(raw).convert("RGB")
    image = image.resize((SHOWN_WIDTH, round(image.height * SHOWN_WIDTH / image.width)), Image.LANCZOS)
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    raw.unlink()
    print(f"{target} ({target.stat().st_size // 1024} KiB) <- {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium not found: apt-get install -y chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mosaic-it-screens-") as tmp_name:
        tmp = Path(tmp_name)
        params = tiny_params(tiny_llama(tmp / "tiny-llama"))
        params["evaluate"]["evals"] = ["heldout"]
        params["tracking"].update(log_model=True, experiment_name="mosaic-it-demo")
        params["compare"].setdefault("promote", {})["alias"] = "candidate"
        (tmp / "repo").mkdir()
        repo = scratch_repo(tmp / "repo", params)
        with mlflow_server(tmp / "mlflow") as mlflow_url, prefect_ui_server(tmp / "prefect") as (env, prefect_url):
            started = time.monotonic()
            code = ("import json; from flows.compare import compare_flow; "
                    f"print(json.dumps(compare_flow(overrides={{'tracking.tracking_uri': '{mlflow_url}'}})))")
            flow = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True)
            if flow.returncode != 0:
                sys.exit(f"the demo flow failed:\n{flow.stderr[-4000:]}")
            print(f"demo flow finished in {time.monotonic() - started:.0f} s")
            result = json.loads(flow.stdout.strip().splitlines()[-1])

            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=mlflow_url)
            parent = client.get_run(result["mlflow_run_id"])
            experiment = parent.info.experiment_id
            train_runs = client.search_runs([experiment], "tags.`mosaic_it.stage` = 'train:mosaic'")
            pages = {
                "prefect-flow-run.png": f"{prefect_url}/runs/flow-run/{latest_flow_run(env['PREFECT_API_URL'])}",
                "mlflow-experiment.png": f"{mlflow_url}/#/experiments/{experiment}/runs",
                "mlflow-train-run.png": f"{mlflow_url}/#/experiments/{experiment}/runs/{train_runs[0].info.run_id}",
                "mlflow-registered-model.png": f"{mlflow_url}/#/models/mosaic-it-mosaic",
            }
            for name, url in pages.items():
                screenshot(chromium, url, args.out / name)


if __name__ == "__main__":
    main()
