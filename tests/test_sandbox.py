"""The bubblewrap sandbox on its own: what a sandboxed process can see, write, reach and use.

Each test runs a short Python snippet inside the sandbox (no Jupyter: the grading tests cover the
kernel) and checks the effect from outside.
"""
from __future__ import annotations

import socket
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from autograder.isolation import sandbox
from autograder.isolation.sandbox import Limits, SandboxSpec, SandboxUnavailable, run_sandboxed

KIT = Path(__file__).resolve().parent.parent


def _spec(tmp_path: Path, **limits) -> SandboxSpec:
    work, kernel = tmp_path / "work", tmp_path / "kernel"
    work.mkdir()
    kernel.mkdir()
    return SandboxSpec(workdir=str(work), kernel_dir=str(kernel), limits=Limits(**{"wall_s": 60, **limits}), slot=400)


def _run(spec: SandboxSpec, code: str, timeout: float = 60):
    return run_sandboxed(spec, [sys.executable, "-c", textwrap.dedent(code)], timeout=timeout)


def test_sees_python_and_a2lib_but_not_autograder_gradebook_or_home(tmp_path):
    spec = _spec(tmp_path)
    secret = tmp_path / "gradebook.db"  # beside the scratch folders, like the grader's gradebook
    secret.write_text("grades")
    result = _run(spec, f"""
        import os, importlib.util, a2lib.mode
        print("autograder-files", os.path.exists({str(KIT / 'autograder' / 'engine' / 'grade.py')!r}))
        print("gradebook", os.path.exists({str(secret)!r}))
        print("kit-listing", sorted(os.listdir({str(KIT)!r})))
        print("home", os.path.exists(os.path.expanduser("~root/.bash_history")) or os.path.exists("/root/.bashrc"))
    """)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "autograder-files False" in out and "gradebook False" in out and "home False" in out
    assert "'autograder'" not in out.split("kit-listing", 1)[1].splitlines()[0]


def test_writes_only_inside_its_folders(tmp_path):
    spec = _spec(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    result = _run(spec, f"""
        import os, shutil
        shutil.rmtree({str(tmp_path)!r}, ignore_errors=True)  # only its own folders are really there
        open("mine.txt", "w").write("ok")
        for target in [{str(outside)!r}, {str(KIT / 'README.md')!r}, "/usr/evil", "/etc/evil"]:
            try:
                with open(target, "a") as f:
                    f.write("x")
                print("WROTE", target)
            except OSError:
                pass
            try:
                os.remove(target)
                print("DELETED", target)
            except OSError:
                pass
    """)
    assert result.returncode == 0, result.stderr
    assert "WROTE" not in result.stdout and "DELETED" not in result.stdout
    assert (Path(spec.workdir) / "mine.txt").read_text() == "ok"
    assert outside.read_text() == "keep me"


def test_no_network_even_to_a_local_port(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(_accept(server)))
    thread.start()
    result = _run(_spec(tmp_path), f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"grades please")
            print("CONNECTED")
        except OSError as exc:
            print("refused", exc)
    """)
    thread.join()
    server.close()
    assert "CONNECTED" not in result.stdout and "refused" in result.stdout
    assert accepted == [None]


def _accept(server):
    try:
        conn, _ = server.accept()
        conn.close()
        return "connection"
    except OSError:
        return None


def test_memory_limit_turns_a_big_allocation_into_memory_error(tmp_path):
    result = _run(_spec(tmp_path, memory_gb=2), """
        import numpy as np
        try:
            np.ones(8 * 2**30 // 8)
            print("ALLOCATED")
        except MemoryError:
            print("MemoryError")
    """)
    assert result.stdout.strip() == "MemoryError", result.stderr


def test_process_bomb_stops_at_the_limit_and_dies_with_the_sandbox(tmp_path):
    spec = _spec(tmp_path, nproc=64)
    result = _run(spec, """
        import os, time
        started = 0
        for _ in range(5000):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(600)
                os._exit(0)
            started += 1
        print("started", started)
    """, timeout=120)
    started = int(result.stdout.split()[-1])
    assert 0 < started < 64
    uid = sandbox.sandbox_uid(spec.slot)
    if uid is not None:  # every process of the sandbox is gone with it (its PID namespace)
        deadline = time.monotonic() + 10  # the kernel reaps a dead namespace's processes asynchronously
        while sandbox.processes_of_uid(uid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sandbox.processes_of_uid(uid) == 0


def test_cpu_time_limit_stops_a_busy_loop(tmp_path):
    result = _run(_spec(tmp_path, cpu_s=1), "while True: pass", timeout=60)
    assert result.returncode != 0


def test_missing_bubblewrap_is_refused_loudly(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="--unsafe"):
        sandbox.require_bwrap()
    from autograder.engine.course import Course
    from autograder.engine.grade import grade_submissions

    with pytest.raises(SandboxUnavailable):
        grade_submissions(Course(tmp_path / "course"), [], progress=False)


def test_unsafe_runs_without_bubblewrap_but_keeps_the_limits(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    spec = _spec(tmp_path, memory_gb=2)
    spec.unsafe = True
    result = _run(spec, """
        import os, numpy as np
        print("kit-visible", os.path.exists(%r))
        try:
            np.ones(8 * 2**30 // 8)
        except MemoryError:
            print("MemoryError")
    """ % str(KIT / "autograder"))
    assert "kit-visible True" in result.stdout and "MemoryError" in result.stdout


def test_one_gpu_per_kernel(monkeypatch, tmp_path):
    """Each kernel sees only the GPU of its grading slot (CUDA_VISIBLE_DEVICES inside the sandbox)."""
    from autograder.engine.worker import visible_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == ["2", "3"]
    spec = _spec(tmp_path)
    spec.env["CUDA_VISIBLE_DEVICES"] = visible_gpus()[spec.slot % 2]
    cmd = sandbox.bwrap_command(spec, ["true"])
    assert cmd[cmd.index("CUDA_VISIBLE_DEVICES") + 1] == "2"
    assert sandbox.gpu_devices("") == []


def test_an_installed_kit_inside_a_visible_folder_is_hidden(tmp_path, monkeypatch):
    """``pip install .`` puts ``autograder/`` (references, checkpoints) in the environment the kernel
    reads: the sandbox mounts an empty folder over it, and the rest of that folder stays readable."""
    from autograder.isolation import sandbox

    site = tmp_path / "site-packages"
    (site / "autograder" / "notebooks").mkdir(parents=True)
    (site / "autograder" / "notebooks" / "reference.npz").write_text("secret")
    (site / "numpy_like.py").write_text("x = 1")
    monkeypatch.setattr(sandbox, "KIT_PACKAGE", site / "autograder")
    spec = _spec(tmp_path)
    spec.read_only = [str(site)]
    result = _run(spec, f"""
        import os
        print("module", os.path.exists({str(site / 'numpy_like.py')!r}))
        print("kit", os.listdir({str(site / 'autograder')!r}))
    """)
    assert result.returncode == 0, result.stderr
    assert "module True" in result.stdout and "kit []" in result.stdout
