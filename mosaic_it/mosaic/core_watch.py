"""Whether other processes left a core free, judged over a span of this process's own work.

A few looks at the run queue (forked.core_idle) cannot tell another job from a kernel thread
that is writing out the previous run's 160 MB output at that moment, and a wrong "busy" keeps
augment's finisher in one process, about 40% slower. Over the seconds augment spends loading and
counting, /proc/stat says how much CPU the whole machine used; less this process's own and its
reaped children's, the rest is what other processes used, a steady average.
"""
from __future__ import annotations

import os
import time
from typing import NamedTuple

from mosaic_it.mosaic.forked import _cores, core_idle

# Other processes' average use, in cores, above which no core counts as free (on two cores: a
# job that keeps one core busy shows as 0.7-1.0 while augment's two processes run beside it).
MOST_OTHERS_USE = 0.5
# A shorter span says too little: the looks at the run queue decide.
LEAST_SPAN_S = 1.0


class Reading(NamedTuple):
    wall_s: float
    machine_busy_s: float  # every core's non-idle time since boot
    own_s: float  # this process's CPU time and its reaped children's


def read() -> Reading | None:
    """None where the kernel does not say (no /proc/stat, no resource module)."""
    try:
        import resource

        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (ImportError, OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait were busy.
    busy = sum(fields[:3]) + sum(fields[5:8])
    own = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return Reading(time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), sum(u.ru_utime + u.ru_stime for u in own))


class CoreWatch:
    def __init__(self) -> None:
        self.start = read()

    def others_use(self, now: Reading | None = None) -> float | None:
        """Other processes' average use since the start, in cores; None over too short a span."""
        now = now or read()
        if self.start is None or now is None or now.wall_s - self.start.wall_s < LEAST_SPAN_S:
            return None
        others = (now.machine_busy_s - self.start.machine_busy_s) - (now.own_s - self.start.own_s)
        return max(0.0, others) / (now.wall_s - self.start.wall_s)

    def core_free(self) -> bool:
        """Whether a second process of this one's would have a core to itself."""
        others = self.others_use()
        if others is None:
            return core_idle()
        return others <= _cores() - 2 + MOST_OTHERS_USE
