"""Spreading grading jobs over workers: a local Dask cluster or an existing one.

* Local workers are forked from a fork server that preloads the grading stack (``start_forkserver``),
  never from the instructor's process, and split the machine's cores (``kernel_threads``).
* At most two jobs per worker thread are in flight (a job carries its submission, some MB with
  checkpoints): the scheduler holds a few submissions, never a whole class's.
* A job whose task raises (a worker that died, a lost connection) is retried by Dask; a result that
  asks for a retry (a kernel killed by a signal nobody sent, or by the wall clock before it used its
  CPU-time budget: a busy machine) is resubmitted once, and reported as failed if it fails again.
* When nothing finishes for longer than one submission may take (a lost worker), the rest are
  reported as stalled instead of waited on.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import warnings
from typing import Callable, Iterable

from autograder.engine.records import GradingJob, GradingResult

log = logging.getLogger(__name__)
# What ``distributed.wait`` raises when its timeout runs out: ``asyncio.TimeoutError``, which is the
# builtin ``TimeoutError`` only from Python 3.11 on (3.10 has two distinct classes).
STALL_ERRORS = (TimeoutError, asyncio.TimeoutError)
ATTEMPTS = 2                         # a kernel killed by a signal nobody sent gets a second chance
STALL_GRACE_S = 300                  # beyond the kernels' own limits, before a silent cluster counts as stalled
# Imported once by the fork server, so that every worker starts with the grading stack loaded.
WORKER_PRELOAD = ["autograder.engine.worker", "autograder.harness.execute", "nbgrader.apps", "nbgrader.converters.autograde",
                  "nbgrader.preprocessors", "nbclient", "jupyter_client.manager", "ipykernel", "sqlalchemy", "torch"]


@functools.lru_cache(maxsize=1)
def start_forkserver() -> None:
    """Start (in the background) the fork server that local workers come from, preloading the grading stack.

    Workers are forked from a fresh server process rather than from this one: a process that has
    already run Jupyter kernels itself (in-process grading with one worker, a notebook) or used
    CUDA holds threads, ZeroMQ contexts and locks that a plain ``fork`` copies half-alive. Preloading
    makes each fork cheap; it must be set before the server's first start, and Dask sets its own
    list only once, so ours is added to it. (Like any multiprocessing start but ``fork``, a script
    that grades needs the usual ``if __name__ == "__main__":`` guard.)
    """
    import multiprocessing.forkserver
    import threading

    import dask
    from distributed import utils

    from autograder.engine import compat

    missing = compat.missing_internals(("multiprocessing.forkserver", "distributed.utils"))
    if missing:  # checked before the internals below are touched
        raise RuntimeError("cannot start the grading workers: " + "; ".join(missing))

    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        ctx = utils.get_mp_context()
    dask_preload = multiprocessing.forkserver._forkserver._preload_modules
    ctx.set_forkserver_preload(list(dict.fromkeys(list(dask_preload) + WORKER_PRELOAD)))
    threading.Thread(target=multiprocessing.forkserver.ensure_running, daemon=True).start()


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None):
    """A Dask client: the given scheduler, else a local cluster of ``workers`` single-threaded processes.

    Processes, not threads: nbgrader changes the working directory of its process while it grades,
    so two gradings must never share one. Each worker imports nbgrader once and grades many.
    """
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    start_forkserver()
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}), \
            LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True, memory_limit=0,
                         dashboard_address=":0", scheduler_port=0, silence_logs=40) as cluster, \
            Client(cluster) as client:
        yield client


def kernel_threads(workers: int, cpus: int | None = None) -> dict[str, str]:
    """Thread counts for each kernel when ``workers`` kernels share this machine's CPUs.

    Every kernel would otherwise start one OpenMP/BLAS thread per core: with two kernels on two
    cores that is four busy threads on two cores, and OpenMP's spinning makes both slower.
    """
    n = str(max(1, (cpus or os.cpu_count() or 1) // max(1, workers)))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


def stall_seconds(jobs: Iterable[GradingJob]) -> float:
    """Longer than any one submission may take: every notebook's kernel at its wall-clock limit, plus grace."""
    return max((job.limits.get("wall_s", 900.0) * job.notebooks for job in jobs), default=900.0) + STALL_GRACE_S


def run_jobs(jobs: dict[str, GradingJob], on_result: Callable[[GradingResult, int], None], workers: int,
             scheduler: str | None, task: Callable[[GradingJob], GradingResult] | None = None) -> None:
    """Grade ``jobs`` (on Dask, or here when one local worker); call ``on_result(result, attempts)`` once per
    student as results arrive (the caller merges them: it is the only writer). ``task`` defaults to
    ``autograder.engine.worker.grade_one``."""
    if task is None:
        from autograder.engine.worker import grade_one as task
    attempts = {s: 1 for s in jobs}

    def done(out: GradingResult) -> bool:  # False: resubmit it
        if out.retry and attempts[out.student] < ATTEMPTS:
            attempts[out.student] += 1
            log.info("%s: %s; grading it again", out.student, out.message or "the kernel died with no limit to blame")
            return False
        on_result(out, attempts[out.student])
        return True

    if workers <= 1 and not scheduler:  # one grader: no cluster to start, grade in this process
        for job in jobs.values():
            while not done(task(job)):
                pass
        return

    from dask.distributed import wait

    stall_s = stall_seconds(jobs.values())
    with dask_client(workers, scheduler) as client, warnings.catch_warnings():
        # A submission travels inside its task (no shared file system is assumed), so a task with
        # checkpoints weighs some MB: Dask warns about it; the window below bounds what is in flight.
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)

        def submit(student: str):
            return client.submit(task, jobs[student], key=f"grade-{student}-{attempts[student]}", retries=2, pure=False)

        waiting, pending = list(jobs), {}

        def fill() -> None:
            window = max(4, 2 * sum(client.nthreads().values()))
            while waiting and len(pending) < window:
                student = waiting.pop(0)
                pending[submit(student)] = student

        fill()
        while pending:
            try:
                finished, _ = wait(list(pending), timeout=stall_s, return_when="FIRST_COMPLETED")
            except STALL_ERRORS:
                for future in pending:
                    future.cancel()
                for student in [*pending.values(), *waiting]:
                    done(GradingResult.lost(student, f"grading stalled: no submission finished for {stall_s:.0f} s "
                                                     "(a lost worker?); run `a2kit grade` again to grade this one"))
                return
            for future in finished:
                student = pending.pop(future)
                try:
                    out = future.result()
                except Exception as exc:  # the task failed on every retry (e.g. workers kept dying)
                    out = GradingResult.lost(student, f"grading task lost: {exc}")
                if not done(out):
                    pending[submit(student)] = student
            fill()
