"""Counting the texts up front in two processes (mosaic_it.mosaic.forked) gives exactly what one
process gives, and falls back to one process where a child cannot or did not run."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from mosaic_it.mosaic import budget, forked
from mosaic_it.mosaic.budget import SampleCounter, TokenCounter

pytestmark = pytest.mark.usefixtures("can_fork")


@pytest.fixture(scope="module")
def texts(sample_data):
    from mosaic_it.records import instruction_text

    records = json.loads(sample_data.read_text(encoding="utf-8"))[:300]
    # Unclean texts and added tokens take the other paths in the child too.
    extra = ["non\u00a0breaking space", "<|im_start|>user hi<|im_end|> there", "a b c\nx"]
    return [instruction_text(r) for r in records] + [r["output"] for r in records] + extra


def state(exact: SampleCounter) -> tuple:
    return exact.tokens, exact.shorts, exact.joined.summaries, exact.segments.memo, exact.bounds


@pytest.mark.parametrize("batch", [None, 37])  # one batch each, or many shared between the two
def test_two_processes_learn_exactly_what_one_learns(embedded_tokenizer, texts, batch, monkeypatch):
    if batch:
        monkeypatch.setattr(budget, "FORK_BATCH", batch)
    serial = SampleCounter(TokenCounter(embedded_tokenizer), texts, fork_at=None)
    parallel = SampleCounter(TokenCounter(embedded_tokenizer), texts, fork_at=2)
    assert state(parallel) == state(serial)
    side = ["1. ", texts[0], "\n", "2. ", texts[-1]]
    assert parallel.side_tokens(side) == serial.side_tokens(side) == TokenCounter(embedded_tokenizer).exact("".join(side))


def shared(steps, there, here=None):
    """in_two over `steps` steps: what ran here, and what was taken from the child, by step."""
    ran_here, taken = {}, {}
    forked.in_two(steps, lambda step: ran_here.setdefault(step, (here or there)(step)),
                  there, lambda step, result: taken.setdefault(step, result))
    return ran_here, taken


def test_each_step_runs_once_here_or_in_the_child_whose_results_come_back():
    def step_result(step):
        time.sleep(0.01)  # long enough for the child to start and claim some
        return {"step": step, "pid": os.getpid()}

    ran_here, taken = shared(40, step_result)
    assert sorted([*ran_here, *taken]) == list(range(40))
    assert all(r["pid"] == os.getpid() for r in ran_here.values())
    assert taken and all(r["pid"] != os.getpid() and r["step"] == step for step, r in taken.items())


def test_a_slow_process_runs_fewer_steps():
    def there(step):
        time.sleep(0.05)
        return step

    def here(step):
        time.sleep(0.005)
        return step

    ran_here, taken = shared(40, there, here=here)
    assert len(ran_here) > 2 * len(taken) >= 2


@pytest.mark.parametrize("result", [{"memo": {"a b": 2, "": 0}, "cuts": [[3, "x y", 1], [2]]}, [1.5, None, True],
                                    "lone \ud800 surrogate", [2**70, -(2**65)], "x" * 100_000,
                                    "new\nlines\r\n and \u2028 separators"])
def test_the_childs_results_read_back_equal(result):
    def here(step):
        time.sleep(0.2)  # the child takes the other steps
        return result

    ran_here, taken = shared(4, lambda step: result, here=here)
    assert taken and all(value == result for value in taken.values())


def test_a_result_pipe_holds_a_whole_step_result_where_linux_allows():
    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        pytest.skip("no pipe sizes on this system")
    with open("/proc/sys/fs/pipe-max-size", encoding="ascii") as handle:
        if int(handle.read()) < forked._RESULT_PIPE:
            pytest.skip("this system caps pipes below the size asked for")
    reader, writer = os.pipe()
    try:
        forked._widen(writer)
        os.set_blocking(writer, False)
        result = b"x" * (700 << 10)  # the largest step result on the full Alpaca file was 0.68 MB
        assert os.write(writer, result) == len(result)  # at once, with no reader: a 64 KB pipe took 64 KB
    finally:
        os.close(reader)
        os.close(writer)


def test_a_failing_child_or_another_thread_leaves_every_step_to_this_process():
    def there(step):
        if step >= 2:
            raise ValueError("the child's work failed")
        return step

    ran_here, taken = shared(8, there, here=lambda step: step)
    assert sorted([*ran_here, *taken]) == list(range(8)) and all(step < 2 for step in taken)
    ran_here, taken = shared(3, lambda step: {1, 2})  # not JSON: the child fails at once
    assert not taken and sorted(ran_here) == [0, 1, 2]
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not forked.can_fork()
        ran_here, taken = shared(3, lambda step: step)
        assert not taken and sorted(ran_here) == [0, 1, 2]
    finally:
        release.set()
        other.join()


def test_with_another_thread_the_counter_learns_everything_in_one_process(embedded_tokenizer, texts):
    serial = SampleCounter(TokenCounter(embedded_tokenizer), texts, fork_at=None)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        fallback = SampleCounter(TokenCounter(embedded_tokenizer), texts, fork_at=2)
    finally:
        release.set()
        other.join()
    assert state(fallback) == state(serial)


def test_when_mine_fails_the_child_is_killed_and_reaped(tmp_path):
    pid_file = tmp_path / "child.pid"

    def child(step):
        pid_file.write_text(str(os.getpid()))
        threading.Event().wait(60)
        return "late"

    def fail(step):
        for _ in range(1000):  # until the child is surely running
            if pid_file.exists() and pid_file.read_text():
                raise KeyboardInterrupt
            threading.Event().wait(0.01)

    with pytest.raises(KeyboardInterrupt):
        forked.in_two(2, fail, child, print)
    with pytest.raises(ChildProcessError):  # killed and already waited for: no zombie left
        os.waitpid(int(pid_file.read_text()), os.WNOHANG)


def test_a_standby_child_prepares_at_once_and_runs_the_job_on_the_message(tmp_path):
    out = tmp_path / "job.json"
    standby = forked.Standby(lambda: (tmp_path / "prepared").write_text(str(os.getpid())),
                             lambda message: out.write_text(json.dumps([message, os.getpid()])))
    assert standby.finish({"x": [1, 2.5]})
    message, pid = json.loads(out.read_text())
    assert message == {"x": [1, 2.5]} and pid == int((tmp_path / "prepared").read_text()) != os.getpid()
    assert not standby.finish({"x": 1})  # once only


def test_a_cancelled_or_failing_standby_says_so_and_leaves_no_child(tmp_path):
    failing = forked.Standby(lambda: None, lambda message: 1 / 0)
    assert not failing.finish({})
    cancelled = forked.Standby(lambda: None, lambda message: (tmp_path / "ran").touch())
    pid = cancelled.pid
    cancelled.cancel()
    assert not (tmp_path / "ran").exists()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_the_plot_drawn_by_the_standby_child_is_the_one_drawn_here(tmp_path, sample_data):
    from mosaic_it.config.augment import AugmentConfig
    from mosaic_it.mosaic.augment import augment_with_stats
    from mosaic_it.mosaic.stats import compute_stats
    from mosaic_it.mosaic.stats_png import plot_stats, plotting

    cfg = AugmentConfig(input=str(sample_data), output=str(tmp_path / "mosaic.jsonl"), stats_dir=str(tmp_path / "stats"),
                        epochs=1, max_tokens=512)
    _, stats = augment_with_stats(cfg, show_progress=False)
    assert stats == compute_stats(cfg.output)
    plot_stats(stats, tmp_path / "here.png")
    assert forked.Standby(plotting, lambda message: plot_stats(message, tmp_path / "child.png")).finish(stats)
    assert ((tmp_path / "stats" / "stats.png").read_bytes() == (tmp_path / "child.png").read_bytes()
            == (tmp_path / "here.png").read_bytes())


def test_a_progress_bar_s_monitor_thread_does_not_keep_a_process_from_forking(monkeypatch):
    from tqdm.auto import tqdm

    monkeypatch.setattr(tqdm, "monitor_interval", 10)  # tqdm's default, as a library's bar starts it
    with open(os.devnull, "w") as devnull, tqdm(total=2, disable=False, file=devnull) as bar:
        bar.update(1)
        assert any(type(t).__name__ == "TMonitor" for t in threading.enumerate())
        assert forked.can_fork()
    assert not any(type(t).__name__ == "TMonitor" for t in threading.enumerate())


def test_a_fork_that_fails_leaves_the_tokenizers_setting_as_it_was(monkeypatch):
    def no_process(*_):
        raise OSError("no process to spare")

    monkeypatch.setattr(os, "fork", no_process)
    for before in (None, "true"):
        if before is None:
            monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
        else:
            monkeypatch.setenv("TOKENIZERS_PARALLELISM", before)
        with pytest.raises(OSError):
            forked.fork_child(lambda: None)
        assert os.environ.get("TOKENIZERS_PARALLELISM") == before
