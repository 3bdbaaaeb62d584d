"""Spreading jobs over workers (``autograder.engine.scheduling``): a stalled cluster is reported, a large
class is graded whole, kernels split the cores. Needs Dask and NumPy only (no nbgrader, no torch):
CI runs it on the oldest and newest Python the README names as well (``.ci/other_pythons``).
"""
from __future__ import annotations


def sleep_forever(job):
    """A grading task that never returns (a worker that hangs)."""
    import time

    time.sleep(600)


def _job(student: str, wall_s: float, files: dict):
    from autograder.engine.records import GradingJob

    return GradingJob(student, "a2", "", files, {}, b"", {}, limits={"wall_s": wall_s})


def test_a_stalled_cluster_is_reported_instead_of_waited_on(monkeypatch):
    from autograder.engine import scheduling

    monkeypatch.setattr(scheduling, "STALL_GRACE_S", 3)
    # Six submissions on two workers: four in flight (the window), two still waiting to be sent.
    students = [f"hung{i}" for i in range(6)]
    jobs = {s: _job(s, 1.0, {"01_toy.ipynb": b""}) for s in students}
    results = {}
    scheduling.run_jobs(jobs, lambda out, attempts: results.setdefault(out.student, out), workers=2, scheduler=None,
                        task=sleep_forever)
    assert sorted(results) == students
    for result in results.values():
        assert not result.ok and "grading stalled" in result.message and "a2kit grade" in result.message


def fail_at_once(job):
    """A grading task that reports a plain failure straight away."""
    from autograder.engine.records import GradingResult

    return GradingResult.lost(job.student, "no notebook")


def test_a_class_larger_than_the_window_is_graded_whole_and_quietly(recwarn):
    from autograder.engine import scheduling

    # 12 MB each: above Dask's "large graph" warning, which the grader expects and silences.
    students = [f"s{i:02d}" for i in range(11)]
    jobs = {s: _job(s, 60.0, {"big.bin": bytes(12_000_000)}) for s in students}
    results = {}
    scheduling.run_jobs(jobs, lambda out, attempts: results.setdefault(out.student, out), workers=2, scheduler=None,
                        task=fail_at_once)
    assert sorted(results) == students and all(r.message == "no notebook" for r in results.values())
    assert not [w for w in recwarn if "large graph" in str(w.message)]


def test_kernels_split_the_cores_between_workers():
    from autograder.engine.scheduling import kernel_threads

    assert kernel_threads(2, cpus=2) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    assert kernel_threads(3, cpus=16)["OMP_NUM_THREADS"] == "5"
    assert kernel_threads(8, cpus=2)["OMP_NUM_THREADS"] == "1"  # never zero
