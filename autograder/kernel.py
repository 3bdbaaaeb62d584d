"""The sandboxed Jupyter kernel: a kernelspec whose command starts ipykernel inside bubblewrap.

nbgrader (trusted, outside) starts this launcher as "the kernel" through the kernelspec written by
``write_kernelspec``; the launcher copies the connection file into the kernel's scratch folder,
starts ``python -m ipykernel_launcher`` inside the sandbox with the limits of ``autograder.sandbox``,
enforces the wall-clock limit, and on exit records what happened (exit status, peak memory, limit
hit) in ``KERNEL_DIR/launcher-PID.json`` for the grader's report. The sockets are Unix sockets in the
kernel's folder (``transport="ipc"``), because the sandbox has no network, not even loopback.

Usage (written into the kernelspec, not typed by hand)::

    python -m autograder.kernel SPEC.json -f CONNECTION_FILE [extra kernel arguments]
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

KERNEL_NAME = "a2kit-sandbox"


def write_kernelspec(kernels_dir: Path, spec_path: Path) -> Path:
    """Write ``kernels_dir/a2kit-sandbox/kernel.json`` that launches the sandbox described by ``spec_path``."""
    folder = Path(kernels_dir) / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [sys.executable, "-m", "autograder.kernel", str(spec_path), "-f", "{connection_file}"],
        "display_name": "Python 3 (a2kit sandbox)",
        "language": "python",
        # Interrupts travel as messages: a signal to the launcher would not reach the sandbox.
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }
    (folder / "kernel.json").write_text(json.dumps(kernel, indent=1))
    return folder


def _describe_exit(returncode: int | None, timed_out: bool, limits) -> str:
    if timed_out:
        return f"wall-clock limit of {limits.wall_s:g} s reached: the sandbox was killed"
    if returncode is None or returncode == 0:
        return ""
    if returncode < 0:
        sig = signal.Signals(-returncode).name
        if -returncode == signal.SIGXCPU:
            return f"CPU-time limit reached ({sig})"
        return f"kernel killed by {sig}"
    return f"kernel exited with status {returncode}"


def main(argv: list[str] | None = None) -> int:
    from autograder.sandbox import SandboxSpec, apply_limits, bwrap_command, check_bwrap, kernel_env, \
        prepare_writable, processes_of_uid, sandbox_uid

    argv = list(sys.argv[1:] if argv is None else argv)
    spec = SandboxSpec.from_dict(json.loads(Path(argv.pop(0)).read_text()))
    i = argv.index("-f")
    connection = Path(argv[i + 1])
    kernel_dir = Path(spec.kernel_dir)
    prepare_writable(spec)
    inside_connection = kernel_dir / "connection.json"
    shutil.copyfile(connection, inside_connection)
    uid = sandbox_uid(spec.slot)
    if uid is not None and not spec.unsafe:
        os.chown(inside_connection, uid, uid)
    kernel_args = [spec.python, "-m", "ipykernel_launcher", "-f", str(inside_connection)] + argv[:i] + argv[i + 2:]

    if spec.unsafe:
        cmd, env = kernel_args, {**os.environ, **kernel_env(spec)}
        nproc_base = processes_of_uid(os.getuid())
    else:
        cmd, env = bwrap_command(spec, kernel_args, bwrap=check_bwrap()), None
        nproc_base = processes_of_uid(uid if uid is not None else os.getuid())
    log = open(kernel_dir / "kernel.log", "ab")  # the kernel's own chatter, kept out of the grader's output
    proc = subprocess.Popen(cmd, env=env, cwd=spec.workdir, preexec_fn=lambda: apply_limits(spec.limits, nproc_base),
                            start_new_session=True, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    state = {"started": time.monotonic(), "timed_out": False, "peak": 0, "peak_procs": 0}
    record_path = Path(spec.record_dir or kernel_dir) / f"launcher-{os.getpid()}.json"

    def write_record() -> None:
        """What happened so far (rewritten as it changes: the kernel manager may kill us any time)."""
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        record = {
            "returncode": proc.returncode, "timed_out": state["timed_out"],
            "seconds": time.monotonic() - state["started"],
            "peak_memory_mb": max(state["peak"] / 2**20, usage.ru_maxrss / 1024),
            "cpu_s": usage.ru_utime + usage.ru_stime, "peak_processes": state["peak_procs"],
            # stopped: the kernel manager shut us down (the normal end), the SIGKILL was ours
            "problem": "" if state.get("stopped") else _describe_exit(proc.returncode, state["timed_out"], spec.limits),
        }
        if state["peak_procs"] >= spec.limits.nproc // 2:  # a process bomb (it stopped at RLIMIT_NPROC)
            record["problem"] = "; ".join(filter(None, [record["problem"], f"started {state['peak_procs']} "
                                                        f"processes (limit {spec.limits.nproc})"]))
        tmp = record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(record_path)

    def stop(signum, frame):  # the kernel manager shuts us down: take the whole sandbox with us
        state["stopped"] = True
        _kill(proc)
        write_record()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    deadline = state["started"] + spec.limits.wall_s
    while proc.poll() is None:  # wait, sampling the sandbox's total memory and process count
        if time.monotonic() > deadline:
            state["timed_out"] = True
            _kill(proc)
            break
        rss, count = tree_usage(proc.pid)
        if rss > state["peak"] * 1.05 or count > state["peak_procs"]:
            state["peak"], state["peak_procs"] = max(state["peak"], rss), max(state["peak_procs"], count)
            write_record()
        try:
            proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
    write_record()
    return 0 if proc.returncode == 0 else 1


def tree_usage(root_pid: int) -> tuple[int, int]:
    """Resident memory (bytes) and number of processes of ``root_pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
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
    total, count, todo = 0, 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        count += 1
        todo.extend(children.get(pid, []))
    return total, count


def _kill(proc: subprocess.Popen) -> None:
    """Kill the sandbox: bwrap and everything in its session (its PID namespace dies with it)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


if __name__ == "__main__":
    sys.exit(main())
