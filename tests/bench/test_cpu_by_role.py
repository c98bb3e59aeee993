"""The benchmark's split of the server's CPU by thread role, on this process's own threads."""

from __future__ import annotations

import os
import threading

import pytest

from bench.common import cpu_by_role, process_cpu_s, thread_cpu_s


def test_roles_from_two_samples_by_thread_id_and_priority():
    pid = 100
    before = {100: (1.0, 0), 101: (2.0, 10), 102: (0.5, 10), 103: (0.2, 0)}
    after = {100: (1.5, 0), 101: (3.0, 10), 102: (0.9, 10), 103: (0.3, 0), 104: (0.4, 10)}
    # 104 started between the samples: all its time counts; none is lost or double counted
    assert cpu_by_role(pid, before, after) == {
        "event_loop": 0.5,
        "recognizer": 1.8,
        "other": 0.1,
    }


def _work(rounds: int) -> int:
    """CPU work by count, not by clock: a fixed number of additions."""
    return sum(sum(range(1000)) for _ in range(rounds))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux /proc only")
def test_this_process_threads_add_up_to_its_cpu_time():
    done, release = threading.Event(), threading.Event()

    def lowered_work() -> None:
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, os.getpriority(os.PRIO_PROCESS, me) + 5)
        _work(20_000)
        done.set()
        release.wait()  # alive until sampled: an ended thread leaves /proc

    worker = threading.Thread(target=lowered_work)
    before = thread_cpu_s(os.getpid())
    worker.start()
    _work(20_000)  # the main thread works too
    done.wait()
    after = thread_cpu_s(os.getpid())
    release.set()
    worker.join()
    roles = cpu_by_role(os.getpid(), before, after)
    assert roles["event_loop"] > 0 and roles["recognizer"] > 0
    assert sum(after[t][0] for t in after) <= process_cpu_s(os.getpid()) + 0.05
