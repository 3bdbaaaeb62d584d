"""Limits never blame the student for the machine: CPU time, not wall time, decides whether the code
was slow; a wall-clock kill before the CPU budget is used is the machine's fault; the student's page
names the true cause of a kernel's death.

Fast tests on the launcher's supervisor (real processes, seconds) and the worker's helpers; the
whole grading of a kernel killed on a busy machine is in ``test_grade.py``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from autograder.engine.grade import WALL_SLACK, kernel_limits
from autograder.engine.worker import GENERIC_DEATH, name_kernel_deaths
from autograder.isolation.kernel import Supervisor, _describe_exit, tree_usage
from autograder.isolation.sandbox import Limits


def supervise(tmp_path, code: str, limits: Limits) -> dict:
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    record = tmp_path / "launcher.json"
    Supervisor(proc, limits, record).watch(os.getppid())   # (its "grading process" is this one's parent)
    return json.loads(record.read_text())


def test_a_sleeping_kernel_killed_by_the_wall_clock_is_the_machines_fault(tmp_path):
    record = supervise(tmp_path, "import time; time.sleep(60)", Limits(wall_s=1.5, budget_s=30))
    assert record["timed_out"] and record["machine_slow"]
    assert record["cpu_s"] < 1.5 and "busy machine" in record["problem"]
    assert record["cause"] == "the grading machine was too busy"


def test_a_busy_kernel_killed_by_the_wall_clock_used_its_budget(tmp_path):
    record = supervise(tmp_path, "while True: pass", Limits(wall_s=3, budget_s=0.5, cpu_s=100))
    assert record["timed_out"] and not record["machine_slow"]
    assert record["cpu_s"] >= 0.5 and record["cause"].startswith("time limit reached")


def test_the_cpu_time_of_the_whole_tree_is_counted(tmp_path):
    """Two busy children: the tree's CPU time (what the budget is checked against) counts both."""
    code = ("import subprocess, sys, time\nps = [subprocess.Popen([sys.executable, '-c', 'while True: pass']) "
            "for _ in range(2)]\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        time.sleep(3)
        rss, count, cpu_s = tree_usage(proc.pid)
        assert count == 3 and rss > 0 and cpu_s > 0.5
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("returncode, timed_out, cpu_s, peak_mb, words", [
    (-signal.SIGKILL, True, 10.0, 100, "the grading machine was too busy"),
    (-signal.SIGKILL, True, 95.0, 100, "time limit reached: your code used 95 s of CPU time"),
    (-signal.SIGXCPU, False, 100.0, 100, "time limit reached: your code used all its CPU time"),
    (-signal.SIGABRT, False, 1.0, 3900, "memory limit reached"),
    (-signal.SIGKILL, False, 1.0, 100, "the kernel was killed (out of memory, most likely)"),
    (-signal.SIGSEGV, False, 1.0, 100, "the kernel crashed (SIGSEGV)"),
    (3, False, 1.0, 100, "the kernel crashed (exit status 3)"),
    (0, False, 1.0, 100, ""),
])
def test_each_end_of_a_kernel_is_named_by_its_true_cause(returncode, timed_out, cpu_s, peak_mb, words):
    limits = Limits(wall_s=300, budget_s=100, memory_gb=4)
    assert _describe_exit(returncode, timed_out, limits, cpu_s, peak_mb)[1] == words


@pytest.mark.parametrize("returncode, timed_out, cpu_s, hit", [
    (128 + signal.SIGXCPU, False, 100.0, True),   # bwrap passes RLIMIT_CPU's signal on as 128 + it
    (128 + signal.SIGKILL, False, 100.0, True),   # the hard CPU limit's SIGKILL, budget used
    (-signal.SIGKILL, True, 10.0, True),          # the wall clock (a busy machine: retried by its own rule)
    (128 + signal.SIGKILL, False, 1.0, False),    # the system's OOM killer: a crash, worth one retry
    (-signal.SIGSEGV, False, 1.0, False),
])
def test_a_time_limit_is_read_from_the_launchers_cause_not_the_raw_exit_status(returncode, timed_out, cpu_s, hit):
    from autograder.engine.worker import time_limit_hit

    limits = Limits(wall_s=300, budget_s=100, memory_gb=4)
    record = {"returncode": returncode, "timed_out": timed_out,
              "cause": _describe_exit(returncode, timed_out, limits, cpu_s, 100)[1]}
    assert time_limit_hit([record]) is hit


def test_the_timeout_is_cpu_time_and_the_wall_clock_allows_more():
    limits = kernel_limits(900, 4, {"OMP_NUM_THREADS": "8"})
    assert limits == {"budget_s": 900.0, "cpu_s": 7200, "wall_s": 900.0 * WALL_SLACK, "memory_gb": 4.0}
    assert kernel_limits(60, 2, {})["cpu_s"] == 60 and WALL_SLACK > 1
    assert Limits(**limits).cpu_budget_s == 900.0 and Limits(wall_s=5).cpu_budget_s == 5.0


def _notebook(text: str) -> str:
    return json.dumps({"cells": [{"outputs": [{"output_type": "error", "evalue": text}]}]})


def test_the_page_names_the_cause_of_each_death_in_order(tmp_path):
    (tmp_path / "01_a.ipynb").write_text(_notebook(f"test_x: {GENERIC_DEATH}."))
    (tmp_path / "02_b.ipynb").write_text(_notebook("fine"))
    (tmp_path / "03_c.ipynb").write_text(_notebook(f"test_y: {GENERIC_DEATH}."))
    launches = [{"started_at": 3, "cause": "memory limit reached"}, {"started_at": 2, "cause": ""},
                {"started_at": 1, "cause": "time limit reached: your code used 900 s of CPU time"}]
    assert name_kernel_deaths(tmp_path, launches) == ["01_a", "03_c"]
    assert "the kernel died (time limit reached: your code used 900 s" in (tmp_path / "01_a.ipynb").read_text()
    assert "the kernel died (memory limit reached)" in (tmp_path / "03_c.ipynb").read_text()
    assert GENERIC_DEATH not in (tmp_path / "01_a.ipynb").read_text() + (tmp_path / "03_c.ipynb").read_text()


def test_causes_that_cannot_be_matched_leave_the_generic_words(tmp_path):
    (tmp_path / "01_a.ipynb").write_text(_notebook(GENERIC_DEATH))
    launches = [{"started_at": 1, "cause": "memory limit reached"}, {"started_at": 2, "cause": "the kernel crashed (SIGSEGV)"}]
    assert name_kernel_deaths(tmp_path, launches) == []
    assert GENERIC_DEATH in (tmp_path / "01_a.ipynb").read_text()


def test_cpu_time_of_earlier_children_is_not_counted(tmp_path):
    """The supervisor counts its kernel's CPU time only, whatever its process ran before."""
    subprocess.run([sys.executable, "-c", "t = __import__('time').process_time\nwhile t() < 1.5: pass"], check=True)
    record = supervise(tmp_path, "import time; time.sleep(60)", Limits(wall_s=1.5, budget_s=1.2))
    assert record["timed_out"] and record["machine_slow"] and record["cpu_s"] < 1.2
