"""Real services for the tests, started on 127.0.0.1 and always stopped: PostgreSQL and a Dask cluster.

``postgres_server()`` yields a ``postgresql://`` URL of a fresh database on a throw-away server
(Debian's ``postgresql`` package: ``initdb`` in a temporary folder, run as the ``postgres`` user
when we are root, since PostgreSQL refuses to run as root). ``dask_cluster(n)`` yields the address
of a ``dask scheduler`` with ``n`` ``dask worker`` processes (one thread each). Where a Debian
package is missing the test fails on Debian (``make services`` installs it) and is skipped elsewhere.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from autograder.pipeline.formgrade import free_port


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (Debian: /usr/lib/postgresql/<ver>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def require(found, package: str):
    """``found`` (a path); where it is None, fail on Debian (``make services`` installs ``package``), else skip."""
    if found is None:
        if shutil.which("apt-get"):
            pytest.fail(f"{package} is missing: run `make services` (it installs Debian's {package}).")
        pytest.skip(f"{package} is not installed and this is not a Debian system `make services` can install it on.")
    return found


def require_postgres() -> Path:
    """The PostgreSQL server's bin folder."""
    return require(postgres_bin(), "postgresql")


def require_chromium() -> str:
    """Debian's Chromium (Playwright drives it; Playwright's own browser download is not used)."""
    return require(shutil.which("chromium") or shutil.which("chromium-browser"), "chromium")


@contextlib.contextmanager
def postgres_server(database: str = "a2"):
    bindir = require_postgres()
    as_user = {}
    folder = Path(tempfile.mkdtemp(prefix="a2kit-pg-"))
    if os.getuid() == 0:  # PostgreSQL will not run as root
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    data, port = folder / "data", free_port()
    run = lambda *cmd: subprocess.run([str(bindir / cmd[0]), *cmd[1:]], check=True, capture_output=True,  # noqa: E731
                                      text=True, cwd=folder, **as_user)
    try:
        run("initdb", "-D", str(data), "-U", "a2kit", "--auth=trust", "-E", "UTF8", "--no-sync")
        run("pg_ctl", "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60",
            "-o", f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off", "start")
        run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "a2kit", database)
        yield f"postgresql://a2kit@127.0.0.1:{port}/{database}"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, cwd=folder, **as_user)
        shutil.rmtree(folder, ignore_errors=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@contextlib.contextmanager
def dask_cluster(workers: int = 2, log_dir: Path | None = None):
    """``dask scheduler`` and ``workers`` ``dask worker`` processes on 127.0.0.1; yields the scheduler's address."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="a2kit-dask-"))
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        log = open(log_dir / f"{name}.log", "w")
        # The workers import the toy's hidden tests from this folder, as a course's own would be installed.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                         os.environ.get("PYTHONPATH")]))}
        procs.append(subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=env))
        log.close()

    try:
        start("scheduler", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
              "--dashboard-address", "127.0.0.1:0")
        for i in range(workers):
            start(f"worker{i}", "distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1",
                  "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0", "--name", f"w{i}")
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(workers, timeout=max(1, deadline - time.monotonic()))
                break
            except OSError:  # the scheduler is not listening yet
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"the Dask cluster did not start; logs in {log_dir}")
                time.sleep(0.5)
        yield address
    finally:
        _stop(procs)
