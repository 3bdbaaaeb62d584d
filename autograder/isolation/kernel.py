"""The sandboxed Jupyter kernel: a kernelspec whose command starts ipykernel inside bubblewrap.

nbgrader (trusted, outside) starts this launcher as "the kernel" through the kernelspec written by
``write_kernelspec``. For every start the launcher makes fresh folders (``sandbox.prepare_launch``: a
new copy of the submitted files and a new home), copies the connection file in, starts
``python -m ipykernel_launcher`` inside the sandbox with the limits of ``autograder.isolation.sandbox``,
enforces the wall-clock limit, and on exit records what happened (exit status, peak memory, CPU
time, limit hit and its cause in the student's words; ``machine_slow`` when the wall clock ran out
before the CPU-time budget was used) in ``RECORD_DIR/launcher-PID.json`` for the grader's report. The sockets are Unix sockets
(``transport="ipc"``), because the sandbox has no network, not even loopback: the kernel creates
them in its fresh folder, which it sees at ``kernel_dir``, and the grader reaches them through
links the launcher puts in the real ``kernel_dir`` (which the sandbox cannot write).
The launcher ends the sandbox when the kernel manager stops it, when the wall clock runs out, and
when the grading process that started it dies (it is then re-parented: nothing is left behind).

Usage (written into the kernelspec, not typed by hand)::

    python -m autograder.isolation.kernel SPEC.json -f CONNECTION_FILE [extra kernel arguments]
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .sandbox import (SandboxSpec, apply_limits, prepare_launch, prepare_writable, sandbox_uid,
                      sandboxed_command)

KERNEL_NAME = "a2kit-sandbox"


def write_kernelspec(kernels_dir: Path, spec_path: Path) -> Path:
    """Write ``kernels_dir/a2kit-sandbox/kernel.json`` that launches the sandbox described by ``spec_path``."""
    folder = Path(kernels_dir) / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [sys.executable, "-m", "autograder.isolation.kernel", str(spec_path), "-f", "{connection_file}"],
        "display_name": "Python 3 (a2kit sandbox)",
        "language": "python",
        # Interrupts travel as messages: a signal to the launcher would not reach the sandbox.
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }
    (folder / "kernel.json").write_text(json.dumps(kernel, indent=1))
    return folder


def _describe_exit(returncode: int | None, timed_out: bool, limits, cpu_s: float = 0.0,
                   peak_mb: float = 0.0) -> tuple[str, str]:
    """``(problem for the instructor, cause in the student's words)`` of a kernel's end ("" when normal).

    The wall clock blames the student only when the kernel also used its CPU-time budget; otherwise
    the machine was too busy (the cause then says so, and the grader retries)."""
    if timed_out:
        if limits.used_budget(cpu_s):
            return (f"time limit reached: {cpu_s:.0f} s of CPU time used (budget {limits.cpu_budget_s:g} s)",
                    f"time limit reached: your code used {cpu_s:.0f} s of CPU time")
        return (f"busy machine: wall-clock limit of {limits.wall_s:g} s reached with only {cpu_s:.0f} s of the "
                f"{limits.cpu_budget_s:g} s CPU-time budget used", "the grading machine was too busy")
    if returncode is None or returncode == 0:
        return "", ""
    if returncode > 128:  # bwrap passes a signal's death on as its exit status, 128 + the signal
        returncode = -(returncode - 128)
    if returncode < 0 and limits.used_budget(cpu_s):  # RLIMIT_CPU: SIGXCPU, then SIGKILL at the hard limit
        return (f"CPU-time limit reached ({cpu_s:.0f} s of {limits.cpu_budget_s:g} s)",
                "time limit reached: your code used all its CPU time")
    if returncode < 0:
        sig = signal.Signals(-returncode).name
        if -returncode == signal.SIGXCPU:
            return f"CPU-time limit reached ({sig})", "time limit reached: your code used all its CPU time"
        if peak_mb >= 0.9 * limits.memory_gb * 1024:
            return f"kernel killed by {sig} at {peak_mb:.0f} MB", "memory limit reached"
        if -returncode == signal.SIGKILL:  # not the launcher's: the system's out-of-memory killer, most likely
            return f"kernel killed by {sig}", "the kernel was killed (out of memory, most likely)"
        return f"kernel killed by {sig}", f"the kernel crashed ({sig})"
    return f"kernel exited with status {returncode}", f"the kernel crashed (exit status {returncode})"


class Supervisor:
    """Watches one sandboxed kernel: its wall clock, its memory and process count, its grading process;
    writes what happened to ``record_path`` as it changes (the kernel manager may kill us any time)."""

    def __init__(self, proc: subprocess.Popen, limits, record_path: Path):
        self.proc, self.limits, self.record_path = proc, limits, record_path
        self.started = time.monotonic()
        self.started_at = time.time()
        self.timed_out = self.stopped = False
        self.peak = self.peak_procs = 0
        self.cpu_s = 0.0   # CPU time of the sandbox's processes, sampled (a killed tree leaves no rusage)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)   # children reaped before this kernel's are not its
        self.cpu_before = before.ru_utime + before.ru_stime

    def write_record(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s = max(self.cpu_s, usage.ru_utime + usage.ru_stime - self.cpu_before)
        peak_mb = max(self.peak / 2**20, usage.ru_maxrss / 1024)
        # stopped: the kernel manager shut us down (the normal end), the SIGKILL was ours
        problem, cause = ("", "") if self.stopped else _describe_exit(self.proc.returncode, self.timed_out,
                                                                       self.limits, cpu_s, peak_mb)
        record = {
            "returncode": self.proc.returncode, "timed_out": self.timed_out, "started_at": self.started_at,
            "seconds": time.monotonic() - self.started, "peak_memory_mb": peak_mb,
            "cpu_s": cpu_s, "cpu_budget_s": self.limits.cpu_budget_s, "peak_processes": self.peak_procs,
            # killed by the wall clock before the CPU budget was used: the machine's fault, not the student's
            "machine_slow": self.timed_out and not self.limits.used_budget(cpu_s),
            "problem": problem, "cause": cause,
        }
        if self.peak_procs >= self.limits.nproc // 2:  # a process bomb (it stopped at RLIMIT_NPROC)
            record["problem"] = "; ".join(filter(None, [record["problem"], f"started {self.peak_procs} "
                                                        f"processes (limit {self.limits.nproc})"]))
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self.record_path)

    def stop(self, signum, frame):
        """SIGTERM from the kernel manager (the normal end): take the whole sandbox with us."""
        self.stopped = True
        _kill(self.proc)
        self.write_record()
        raise SystemExit(128 + signum)

    def watch(self, parent: int) -> None:
        """Wait for the kernel, sampling the sandbox's memory and process count; kill it at the wall-clock
        limit or when the grading process ``parent`` is gone (SIGKILL, a lost terminal)."""
        deadline = self.started + self.limits.wall_s
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.timed_out = True
                _kill(self.proc)
                break
            if os.getppid() != parent:
                self.stopped = True
                _kill(self.proc)
                break
            rss, count, cpu_s = tree_usage(self.proc.pid)
            self.cpu_s = max(self.cpu_s, cpu_s)
            if rss > self.peak * 1.05 or count > self.peak_procs:
                self.peak, self.peak_procs = max(self.peak, rss), max(self.peak_procs, count)
                self.write_record()
            try:
                self.proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
        self.write_record()


def start_kernel(spec: SandboxSpec, connection: Path, extra_args: list[str]):
    """Fresh folders, the connection file and socket links in place, ipykernel started in the sandbox.

    Returns ``(process, launch or None, socket links)``.
    """
    kernel_dir = Path(spec.kernel_dir)
    launch = prepare_launch(spec) if spec.submission_dir else None
    if launch is None:
        prepare_writable(spec)
    own_dir = Path(launch.kernel) if launch else kernel_dir   # where the kernel's files really are
    shutil.copyfile(connection, own_dir / "connection.json")
    uid = sandbox_uid(spec.slot)
    if uid is not None and not spec.unsafe:
        os.chown(own_dir / "connection.json", uid, uid)
    links = _socket_links(connection, kernel_dir, own_dir) if launch and not spec.unsafe else []
    inside = (own_dir if spec.unsafe else kernel_dir) / "connection.json"
    kernel_args = [spec.python, "-m", "ipykernel_launcher", "-f", str(inside)] + extra_args
    cmd, env, cwd, nproc_base = sandboxed_command(spec, kernel_args, launch)
    log = open(Path(spec.record_dir or kernel_dir) / f"kernel-{os.getpid()}.log", "ab")  # the kernel's chatter
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, preexec_fn=lambda: apply_limits(spec.limits, nproc_base),
                            start_new_session=True, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    return proc, launch, links


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    spec = SandboxSpec.from_dict(json.loads(Path(argv.pop(0)).read_text()))
    i = argv.index("-f")
    parent = os.getppid()
    proc, launch, links = start_kernel(spec, Path(argv[i + 1]), argv[:i] + argv[i + 2:])
    supervisor = Supervisor(proc, spec.limits, Path(spec.record_dir or spec.kernel_dir) / f"launcher-{os.getpid()}.json")
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    supervisor.watch(parent)
    for link in links:
        link.unlink(missing_ok=True)
    if launch:
        shutil.rmtree(Path(launch.kernel).parent, ignore_errors=True)
    return 0 if proc.returncode == 0 else 1


def _socket_links(connection: Path, kernel_dir: Path, own_dir: Path) -> list[Path]:
    """Links ``kernel_dir/s-PORT`` -> ``own_dir/s-PORT`` for each socket of the connection file.

    The kernel, seeing ``own_dir`` at ``kernel_dir``, creates its sockets there; the grader connects
    to the paths in the connection file, i.e. to these links.
    """
    info = json.loads(connection.read_text())
    links = []
    for key in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"):
        name = f"{Path(info['ip']).name}-{info[key]}"
        link = kernel_dir / name
        if link.is_symlink():
            link.unlink()
        link.symlink_to(own_dir / name)
        links.append(link)
    return links


def tree_usage(root_pid: int) -> tuple[int, int, float]:
    """Resident memory (bytes), number of processes and CPU seconds (user + system, their reaped children's
    included) of ``root_pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, int] = {}
    page, tick = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1] = ppid
        rss[pid] = int(fields[21]) * page                     # fields[21] = rss in pages
        cpu[pid] = sum(int(v) for v in fields[11:15])         # utime, stime, cutime, cstime in ticks
    total, count, ticks, todo = 0, 0, 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        ticks += cpu.get(pid, 0)
        count += 1
        todo.extend(children.get(pid, []))
    return total, count, ticks / tick


def _kill(proc: subprocess.Popen) -> None:
    """Kill the sandbox: bwrap and everything in its session (its PID namespace dies with it)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


if __name__ == "__main__":
    sys.exit(main())
