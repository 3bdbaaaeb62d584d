"""The bubblewrap sandbox that student code runs in.

Only the Jupyter *kernel* runs inside the sandbox (``autograder/kernel.py`` launches it); nbgrader
itself, the gradebook and the hidden tests' reference values stay outside. Inside, the kernel sees:

- a read-only system (``/usr``, ``/etc``), the Python installation and virtual environment, the
  ``a2lib`` package and the data folder, all read-only;
- its own scratch folders, the only writable places (the submission's working copy and the kernel's
  socket/home folder), plus a private ``/tmp``. When the spec names a ``submission_dir``, every
  start (every notebook) gets *fresh* ones (``prepare_launch``): a new copy of the submitted files,
  mounted where the notebook lives, and a new home, so nothing one notebook's code writes is seen
  by the next, and nothing it writes reaches the grader's folders;
- of the data folder, only what grading may show: the training batches and the class names, never
  the test set with its labels (``data_view``; a data folder reached through a symlink is resolved);
- no network (``--unshare-net``: the kernel talks to nbgrader over Unix sockets in its scratch
  folder), its own PID namespace (every process dies with the kernel, ``--die-with-parent``), and
  no view of the gradebook, ``autograder/`` (reference values; in an installed kit, where it lies
  inside the virtual environment the kernel needs, an empty folder is mounted over it), other
  submissions or any home.

Limits, set with ``setrlimit`` on the sandbox's processes: address-space data (``RLIMIT_DATA``:
a big allocation raises ``MemoryError``; unlike ``RLIMIT_AS`` it does not count the gigabytes of
address space that importing torch reserves), CPU time, file size, core dumps, process count. The
wall-clock limit is enforced by the launcher, which kills the whole sandbox; it is the machine's
limit, not the student's: a kernel it kills that had not used its CPU-time budget (``Limits.budget_s``)
was slowed by a busy machine, and the grader retries it rather than scoring it.

When the grader runs as root, bubblewrap keeps its capabilities only to set up the mounts; the
kernel then runs as an unprivileged uid (one per grading slot, so ``RLIMIT_NPROC`` counts only
that submission's processes) with every capability dropped and ``no_new_privs``.
"""
from __future__ import annotations

import os
import resource
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import a2lib

A2LIB_DIR = Path(a2lib.__file__).resolve().parent  # the student package, shown read-only to the kernel
# The instructor kit's package (hidden tests, references, checkpoints): in an installed kit it lies in
# the virtual environment the kernel needs, so an empty folder is mounted over it (see bwrap_command).
KIT_PACKAGE = Path(__file__).resolve().parent.parent
SANDBOX_UID_BASE = 61000  # kernels of grading slot k run as uid/gid SANDBOX_UID_BASE + k (root only)
SYSTEM_DIRS = ("/usr", "/etc", "/opt")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or does not work here: grading would run student code unconfined."""


@dataclass
class Limits:
    """Resource limits of one sandboxed kernel (and every process it starts)."""

    wall_s: float = 900.0          # whole kernel lifetime, enforced by the launcher
    cpu_s: int | None = None       # RLIMIT_CPU per process; default: wall_s (a busy loop cannot outlive the wall clock)
    # CPU seconds (all the sandbox's processes together) whose use makes a wall-clock kill the student's:
    # a kernel killed at ``wall_s`` that used less was slowed by a busy machine (default: cpu_s, else wall_s).
    budget_s: float | None = None
    memory_gb: float = 4.0         # RLIMIT_DATA per process
    nproc: int = 256               # RLIMIT_NPROC: processes of the sandbox uid
    file_size_gb: float = 2.0      # RLIMIT_FSIZE: no disk filling

    @property
    def cpu_budget_s(self) -> float:
        return float(next(v for v in (self.budget_s, self.cpu_s, self.wall_s) if v is not None))

    def used_budget(self, cpu_s: float) -> bool:
        """True when ``cpu_s`` seconds of CPU time count as the budget spent (5 % for sampling between reads)."""
        return cpu_s >= 0.95 * self.cpu_budget_s

    def rlimits(self) -> dict[int, int]:
        gib = 1024 ** 3
        return {
            resource.RLIMIT_DATA: int(self.memory_gb * gib),
            resource.RLIMIT_CPU: int(self.cpu_s if self.cpu_s is not None else max(1, self.wall_s)),
            resource.RLIMIT_FSIZE: int(self.file_size_gb * gib),
            resource.RLIMIT_CORE: 0,
        }


@dataclass
class SandboxSpec:
    """Everything the kernel launcher needs to start one sandboxed kernel (JSON-serialisable).

    ``workdir`` (the notebook's folder, also the kernel's working directory) and ``kernel_dir``
    (sockets, connection file, HOME) are the only writable paths; ``read_only`` are extra folders
    to show read-only (the data folder); ``env`` is the kernel's whole environment on top of a
    minimal base.
    """

    workdir: str
    kernel_dir: str
    read_only: list[str] = field(default_factory=list)   # folders or files
    submission_dir: str = ""       # fresh copies of these files are the workdir of each start (see prepare_launch)
    launch_root: str = ""          # where those per-start folders are made (outside the sandbox's view)
    read_only_at: dict[str, str] = field(default_factory=dict)  # {path inside: real path}, e.g. data_view's
    env: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    record_dir: str = ""           # where the launcher reports (outside the sandbox's view); default kernel_dir
    slot: int = 0                  # grading slot: picks the sandbox uid when running as root
    unsafe: bool = False           # no bubblewrap at all (the instructor said --unsafe)
    python: str = sys.executable

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SandboxSpec":
        data = dict(data)
        data["limits"] = Limits(**data.get("limits", {}))
        return cls(**data)


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def require_bwrap() -> str:
    """The path of a working ``bwrap``; raises SandboxUnavailable with what to do otherwise."""
    path = bwrap_path()
    if path is None:
        raise SandboxUnavailable(
            "bubblewrap (`bwrap`) is not installed, so student code cannot be sandboxed. Install it "
            "(Debian/Ubuntu: `apt install bubblewrap`) or, only for trusted submissions, pass --unsafe.")
    import subprocess

    probe = subprocess.run([path, "--unshare-net", "--unshare-pid", "--die-with-parent", "--ro-bind", "/", "/",
                            "--proc", "/proc", "--dev", "/dev", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise SandboxUnavailable(
            f"bubblewrap is installed but cannot create a sandbox here ({probe.stderr.strip()}). "
            "Unprivileged user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1), "
            "or, only for trusted submissions, pass --unsafe.")
    return path


def _python_roots(python: str) -> list[str]:
    """Folders the interpreter needs: its prefix, base prefix and the resolved executable's install."""
    exe = Path(python)
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(exe.resolve().parent.parent), str(exe.parent.parent)}
    # site-packages folders a .pth file adds (an environment that shares another's packages)
    roots |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()}
    return sorted(r for r in roots if r and Path(r).exists() and not r.startswith(SYSTEM_DIRS))


def _with_parents(paths: list[str]) -> list[str]:
    """Every ancestor of ``paths`` (outermost first): bubblewrap would create them mode 0700."""
    out: list[str] = []
    for p in paths:
        for parent in reversed(Path(p).parents):
            s = str(parent)
            if s != "/" and s not in out:
                out.append(s)
    return out


def sandbox_uid(slot: int) -> int | None:
    """The unprivileged uid the kernel runs as (root only; None when already unprivileged)."""
    return SANDBOX_UID_BASE + slot if os.geteuid() == 0 else None


@dataclass
class Launch:
    """The fresh writable folders of one sandbox start: ``work`` (shown at spec.workdir) and ``kernel``
    (shown at spec.kernel_dir: sockets, connection file, home)."""

    work: str
    kernel: str


def bwrap_command(spec: SandboxSpec, argv: list[str], bwrap: str = "bwrap", launch: Launch | None = None) -> list[str]:
    """The full ``bwrap ... argv`` command line for ``spec`` (with ``launch``'s fresh folders if given)."""
    read_only = _python_roots(spec.python) + [str(A2LIB_DIR)] + [str(Path(p).resolve()) for p in spec.read_only]
    writable = [spec.workdir, spec.kernel_dir]
    sources = dict(zip(writable, [launch.work, launch.kernel])) if launch else {}
    cmd = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if os.geteuid() != 0:
        cmd += ["--unshare-user"]
    for d in SYSTEM_DIRS:
        if Path(d).exists():
            cmd += ["--ro-bind", d, d]
    for link in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        p = Path("/") / link
        if p.is_symlink():
            cmd += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            cmd += ["--ro-bind", str(p), str(p)]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    for device in gpu_devices(kernel_env(spec).get("CUDA_VISIBLE_DEVICES", "")):
        cmd += ["--dev-bind", device, device]
    mounts = [p for p in read_only + writable if Path(p).exists()] + list(spec.read_only_at)
    for parent in _with_parents(mounts):
        if parent not in ("/tmp", "/usr", "/etc", "/opt") and not parent.startswith(("/usr/", "/etc/", "/opt/")):
            cmd += ["--perms", "0755", "--dir", parent]
    for p in read_only:
        if Path(p).exists():
            cmd += ["--ro-bind", p, p]
    if any(KIT_PACKAGE.is_relative_to(Path(p)) for p in read_only):  # an installed kit: hide it
        cmd += ["--perms", "0555", "--tmpfs", str(KIT_PACKAGE)]
    for inside, real in spec.read_only_at.items():
        cmd += ["--ro-bind", real, inside]
    for p in writable:
        cmd += ["--bind", sources.get(p, p), p]
    cmd += ["--chdir", spec.workdir, "--clearenv"]
    for k, v in kernel_env(spec).items():
        cmd += ["--setenv", k, v]
    uid = sandbox_uid(spec.slot)
    if uid is not None:
        # Drop root inside the sandbox: a real unprivileged uid, no capabilities, no way back.
        cmd += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                "--inh-caps=-all", "--bounding-set=-all"]
    return cmd + list(argv)


def gpu_devices(visible: str) -> list[str]:
    """The /dev nodes a kernel needs for the GPUs in ``visible`` (CUDA_VISIBLE_DEVICES): only its own."""
    gpus = [g.strip() for g in visible.split(",") if g.strip().isdigit()]
    if not gpus:
        return []
    shared = ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"]
    return [d for d in shared + [f"/dev/nvidia{g}" for g in gpus] if Path(d).exists()]


def data_view(data_root: str | os.PathLike) -> tuple[str, dict[str, str]]:
    """``(root as the kernel sees it, {path inside: real file})``: CIFAR-10's training batches and
    class names, never the test set.

    The kernel loads training data itself (notebook 2's overfit check); test images reach it only
    through the harness, without labels. Every file is mounted from what it resolves to, so a data
    folder reached through symlinks works as a plain one does.
    """
    root = Path(os.path.abspath(data_root))
    folder = root / "cifar-10-batches-py"
    mounts = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.name != "test_batch" and path.resolve().is_file():
                mounts[str(folder / path.name)] = str(path.resolve())
    return str(root), mounts


def kernel_env(spec: SandboxSpec) -> dict[str, str]:
    """The kernel's environment: a minimal base, the grading variables, and ``spec.env``."""
    home = str(Path(spec.kernel_dir) / "home")
    env = {
        "PATH": f"{Path(spec.python).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home, "IPYTHONDIR": f"{home}/.ipython", "MPLCONFIGDIR": f"{home}/.matplotlib",
        "XDG_CACHE_HOME": f"{home}/.cache", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONWARNINGS": "ignore",
        "NBGRADER_EXECUTION": "autograde", "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "TQDM_DISABLE": "1", "MPLBACKEND": "agg",
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
    }
    env.update({k: str(v) for k, v in spec.env.items()})
    return env


# Grading is deterministic: Python and NumPy are seeded when the kernel starts, torch (slow to
# import, so not imported here) as soon as a cell has imported it, with deterministic algorithms.
SEED_STARTUP = """
import random, sys
random.seed(0)
try:
    import numpy
    numpy.random.seed(0)
except ImportError:
    pass

def _a2kit_seed_torch(*_):
    torch = sys.modules.get("torch")
    if torch is not None and not getattr(torch, "_a2kit_seeded", False):
        torch._a2kit_seeded = True
        torch.manual_seed(0)
        from a2lib.mode import use_deterministic_algorithms
        use_deterministic_algorithms()

get_ipython().events.register("pre_run_cell", _a2kit_seed_torch)
del random
"""


def apply_limits(limits: Limits, nproc_base: int = 0) -> None:
    """setrlimit in the calling process (a ``preexec_fn``): the sandbox inherits them."""
    for which, value in limits.rlimits().items():
        resource.setrlimit(which, (value, value))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc_base + limits.nproc, nproc_base + limits.nproc))


def processes_of_uid(uid: int) -> int:
    """How many processes ``uid`` runs now (RLIMIT_NPROC counts them all)."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def _write_startup(home: Path) -> None:
    startup = home / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-a2kit-seed.py").write_text(SEED_STARTUP)


def _give_to(uid: int | None, *tops: Path) -> None:
    """chown ``tops`` and everything below them to the sandbox uid (no-op when unprivileged)."""
    if uid is None:
        return
    for top in tops:
        os.chown(top, uid, uid)
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


def prepare_writable(spec: SandboxSpec) -> None:
    """Create the kernel's home in ``kernel_dir`` and hand workdir and kernel_dir to the sandbox uid
    (the spec's own folders are the writable ones: no ``submission_dir``)."""
    _write_startup(Path(spec.kernel_dir) / "home")
    if not spec.unsafe:
        _give_to(sandbox_uid(spec.slot), Path(spec.workdir), Path(spec.kernel_dir))


def prepare_launch(spec: SandboxSpec) -> Launch:
    """Fresh writable folders for one start: a copy of ``submission_dir`` and an empty kernel folder.

    Plain files only are copied (a symlink in a submission is not followed). The folders belong to
    the sandbox uid; ``spec.workdir`` and ``spec.kernel_dir`` themselves stay the grader's.
    """
    import tempfile

    Path(spec.launch_root).mkdir(parents=True, exist_ok=True)
    top = Path(tempfile.mkdtemp(prefix="launch-", dir=spec.launch_root))
    work, kernel = top / "work", top / "kernel"
    shutil.copytree(spec.submission_dir, work, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if os.path.islink(os.path.join(folder, n))])
    kernel.mkdir()
    _write_startup(kernel / "home")
    if not spec.unsafe:
        _give_to(sandbox_uid(spec.slot), work, kernel)
    os.chmod(top, 0o755)
    return Launch(str(work), str(kernel))


def run_sandboxed(spec: SandboxSpec, argv: list[str], timeout: float | None = None):
    """Run one command in the sandbox of ``spec`` with its limits (``subprocess.CompletedProcess``).

    The kernel launcher does the same for ipykernel; this is for checks and measurements.
    """
    import subprocess

    launch = prepare_launch(spec) if spec.submission_dir else None
    if launch is None:
        prepare_writable(spec)
    cmd, env, cwd, nproc_base = sandboxed_command(spec, argv, launch)
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=lambda: apply_limits(spec.limits, nproc_base))


def sandboxed_command(spec: SandboxSpec, argv: list[str], launch: Launch | None):
    """``(command, env or None, cwd, process-count base)`` that runs ``argv`` as the spec says."""
    uid = sandbox_uid(spec.slot)
    if spec.unsafe:  # no sandbox: only the fresh folders and the environment remain
        env = {**os.environ, **kernel_env(spec)}
        if launch:
            env.update(HOME=f"{launch.kernel}/home", IPYTHONDIR=f"{launch.kernel}/home/.ipython")
        return list(argv), env, launch.work if launch else spec.workdir, processes_of_uid(os.getuid())
    cmd = bwrap_command(spec, argv, bwrap=require_bwrap(), launch=launch)
    return cmd, None, launch.work if launch else spec.workdir, processes_of_uid(uid if uid is not None else os.getuid())
