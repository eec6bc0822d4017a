"""The progress reporter: what a sink receives and when, the log lines off a terminal, and the
Prefect sink writing run-logger lines and a progress artifact on a real (temporary) Prefect server."""
from __future__ import annotations

import logging

import pytest

from mosaic_it.progress import Progress, Snapshot, progress, reporting_to


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_sink_gets_the_start_every_interval_and_the_end():
    clock, seen = FakeClock(), []
    with reporting_to(seen.append):
        bar = Progress(10, "generate ifeval", unit="prompt", every_s=5, terminal=False, clock=clock)
        clock.now += 2
        bar.update(2)  # 2 s since the start: under the interval, nothing sent
        clock.now += 3
        bar.update(2)  # 5 s: sent
        bar.set_postfix(loss=1.23456)
        clock.now += 5
        bar.update(6)
        bar.close()
        bar.close()
    assert [(s.done, s.elapsed_s, s.final) for s in seen] == [(0, 0.0, False), (4, 5.0, False),
                                                               (10, 10.0, False), (10, 10.0, True)]
    assert seen[1].line() == "generate ifeval: 4/10 prompt (40%), 0.8 prompt/s, ETA 8s"
    assert seen[3].line() == "generate ifeval: 10/10 prompt (100%), 1 prompt/s, done in 10s, loss=1.235"


def test_snapshot_lines_without_a_total_and_long_durations():
    assert Snapshot("judge", "pair", 3, None, 0.0).line() == "judge: 3 pair"
    assert Snapshot("train", "step", 1, 3601, 60.0).line() == "train: 1/3601 step (0%), 0.0167 step/s, ETA 60h00m"
    assert Snapshot("train", "step", 30, 100, 60.0).line() == "train: 30/100 step (30%), 0.5 step/s, ETA 2m20s"


def test_off_a_terminal_lines_go_to_the_log_and_sinks_replace_them(caplog):
    caplog.set_level(logging.INFO, logger="mosaic_it.progress")
    with progress(3, "held-out loss", unit="record", every_s=3600, terminal=False) as bar:
        bar.update(3)
    lines = [r.getMessage() for r in caplog.records if r.name == "mosaic_it.progress"]
    assert lines[0] == "held-out loss: 0/3 record (0%)"
    assert lines[1].startswith("held-out loss: 3/3 record (100%), ") and ", done in 0s" in lines[1]
    assert len(lines) == 2
    caplog.clear()
    seen = []
    with reporting_to(seen.append), progress(3, "augment", every_s=3600, terminal=False) as bar:
        bar.update(3)
    assert [r for r in caplog.records if r.name == "mosaic_it.progress"] == []
    assert [s.done for s in seen] == [0, 3]


def test_a_failing_sink_never_stops_the_work(caplog):
    def broken(snapshot):
        raise ConnectionError("API down")

    with reporting_to(broken), progress(2, "train", every_s=0, terminal=False) as bar:
        bar.update(2)
    assert bar.done == 2
    assert "progress sink failed: API down" in caplog.text


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the temporary server's SQLAlchemy models
def test_prefect_sink_logs_and_moves_a_progress_artifact(prefect_api):
    import asyncio

    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, LogFilter, LogFilterFlowRunId

    from tasks.progress import artifact_key, prefect_progress

    @task
    def stage() -> str:
        with prefect_progress():
            with progress(4, "generate ifeval", unit="prompt", every_s=0, terminal=False) as bar:
                bar.update(1)
                bar.update(3)
            logging.getLogger("mosaic_it.evaluate").info("evaluate: wrote runs/evaluate/mosaic/metrics.json")
        from prefect.runtime import flow_run

        return str(flow_run.id)

    @flow
    def watched() -> str:
        return stage()

    run_id = watched()
    assert artifact_key("generate ifeval") == "progress-generate-ifeval"

    async def read():
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["progress-generate-ifeval"])))
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
            return artifacts, logs

    for _ in range(40):  # logs reach the server in batches
        artifacts, logs = asyncio.run(read())
        messages = [log.message for log in logs]
        if any("metrics.json" in m for m in messages):
            break
        import time

        time.sleep(0.25)
    (artifact,) = artifacts
    assert artifact.type == "progress" and float(artifact.data) == 100.0
    assert str(artifact.flow_run_id) == run_id
    assert artifact.description.startswith("generate ifeval: 4/4 prompt (100%)")
    progress_lines = [m for m in messages if m.startswith("generate ifeval: ")]
    assert [line.split(" prompt")[0] for line in progress_lines] == [
        "generate ifeval: 0/4", "generate ifeval: 1/4", "generate ifeval: 4/4", "generate ifeval: 4/4"]
    assert "evaluate: wrote runs/evaluate/mosaic/metrics.json" in messages
