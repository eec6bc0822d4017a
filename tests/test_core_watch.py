"""Whether augment's finisher gets a second process: judged from what other processes used over
seconds of augment's own work (mosaic_it.mosaic.core_watch), not from a few looks at the run queue."""
import subprocess
import sys
import time

import pytest

from mosaic_it.mosaic import core_watch
from mosaic_it.mosaic.core_watch import CoreWatch, Reading


def watch_from(start):
    watch = CoreWatch()
    watch.start = start
    return watch


def test_others_use_is_the_machine_s_busy_time_less_this_process_s_over_the_span():
    watch = watch_from(Reading(wall_s=10.0, machine_busy_s=100.0, own_s=5.0))
    # 4 s later: the machine was busy 9.2 core-s, 8 of them this process and its children.
    assert watch.others_use(Reading(14.0, 109.2, 13.0)) == pytest.approx(0.3)
    assert watch.others_use(Reading(14.0, 107.0, 13.0)) == 0.0  # clock ticks lag: never below 0


def test_a_short_span_or_no_proc_stat_leaves_it_to_the_run_queue_looks(monkeypatch):
    monkeypatch.setattr(core_watch, "core_idle", lambda: "looked")
    assert watch_from(Reading(10.0, 100.0, 5.0)).others_use(Reading(10.5, 101.0, 6.0)) is None
    monkeypatch.setattr(core_watch, "read", lambda: None)
    assert CoreWatch().core_free() == "looked"


@pytest.mark.parametrize(("others", "cores", "free"), [(0.0, 2, True), (0.5, 2, True), (0.7, 2, False),
                                                         (1.0, 2, False), (1.4, 4, True), (2.6, 4, False)])
def test_a_core_is_free_where_others_use_less_than_all_but_one_and_a_half(monkeypatch, others, cores, free):
    monkeypatch.setattr(core_watch, "_cores", lambda: cores)
    monkeypatch.setattr(CoreWatch, "others_use", lambda self: others)
    assert CoreWatch().core_free() is free


def test_other_processes_keeping_every_core_busy_leave_no_core_free():
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(core_watch._cores())]
    try:
        time.sleep(0.3)
        watch = CoreWatch()
        time.sleep(core_watch.LEAST_SPAN_S + 0.2)
        assert watch.others_use() > 0.8
        assert not watch.core_free()
    finally:
        for process in busy:
            process.kill()
            process.wait()
