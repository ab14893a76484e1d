"""The per-call processor's helpers (pipeline/run/call.py)."""

import os
import sys
import threading

import pytest

from pipeline.run.recording import BESIDE_NICENESS, beside_executor


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="niceness is per thread only on Linux")
def test_beside_thread_runs_at_low_priority_and_so_do_threads_it_starts():
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def niceness_here_and_in_a_child() -> tuple[int, int]:
        seen: list[int] = []
        child = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        child.start()
        child.join()
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), seen[0]

    with beside_executor() as beside:
        here, child = beside.submit(niceness_here_and_in_a_child).result()
    assert here == child == max(own, BESIDE_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the caller is untouched
