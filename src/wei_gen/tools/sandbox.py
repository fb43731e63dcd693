"""Run generated Python in a sandbox: ``run_python(files, argv)`` returns what happened, the caller stays unharmed.

Generated experiment scripts must never run in wei-gen's own process or environment. A run gets a fresh temporary
directory holding ``files`` (its cwd, ``HOME`` and ``TMPDIR``), is started as a separate ``python`` process and is
confined by five layers:

1. **Environment.** The venv's interpreter (``sys.executable``) runs with ``-s`` (no user site-packages) and ``-P``
   (no script directory prepended implicitly) in an environment built from scratch: ``PATH=/usr/bin:/bin``,
   ``HOME``/``TMPDIR`` inside the run directory, ``LANG=C.UTF-8``, ``PYTHONDONTWRITEBYTECODE=1``,
   ``PYTHONHASHSEED=0``, ``PYTHONUNBUFFERED=1``, one BLAS/OpenMP thread, ``PYTHONPATH`` from ``pythonpath`` only,
   plus the caller's ``env`` extras, which are refused (``ValueError``) when a name looks secret (``*KEY*``,
   ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``OPENAI_*``, ``AWS_*``...), when a value carries credentials or equals a
   secret of this process, or when a name would override the sandbox's own (``PATH``, ``HOME``, ``PYTHON*``,
   ``LD_*``...). Nothing of the caller's environment is inherited, so API keys are simply absent.
2. **Audit-hook guard** (``_sandbox_boot.py``, which lists exactly what it refuses). Before the target runs (a script
   path, ``-m module`` or ``-c code``), a ``sys.addaudithook`` hook is installed that refuses network calls (connect,
   bind, sendto, name lookups; any address, loopback included: a simulated lab runs in-process), new processes
   (subprocess, ``os.system``, ``exec``, ``fork``, ``posix_spawn``, multiprocessing), writing, removing or renaming
   anything outside the run directory (symlinks resolved), reading other processes' ``/proc`` entries (the caller's
   environment) and devices, ``ctypes``/``dlopen`` (so z3 does not load inside), raising resource limits and
   signalling other processes. Refusals raise ``PermissionError`` (``ImportError`` for imports) in the sandboxed code
   and are listed in ``SandboxResult.blocked``. Audit hooks cannot be removed, and the guard binds everything it calls
   at start-up, so monkeypatching does not disarm it. **Limit:** audit hooks are not a security boundary: native code
   (an extension module written into the run directory and loaded through ``importlib``'s loaders, crafted bytecode,
   an interpreter bug) bypasses them, and ``blocked`` is reported by the sandboxed process itself (it can add lines,
   not undo a refusal). Layers 3 and 4 hold against native code too.
3. **Network namespace.** When ``unshare --net`` works here (root, or unprivileged user namespaces with
   ``--map-root-user``), the process runs in a fresh network namespace with no interfaces up, so even native code has
   no network, loopback included. Detected once; ``sandbox_available()["netns"]`` says whether it is active.
4. **Resource limits** (set in the child before ``exec``): ``RLIMIT_AS`` = ``memory_mb`` (a large allocation raises
   ``MemoryError``), ``RLIMIT_CPU`` = ``cpu_seconds`` (default ``ceil(timeout) + 1``; SIGXCPU, then SIGKILL one second
   later), ``RLIMIT_FSIZE`` 64 MB (a larger file gets SIGXFSZ), ``RLIMIT_CORE`` 0, ``RLIMIT_NOFILE`` 256 and a small
   ``RLIMIT_NPROC`` (the kernel does not apply it to root). The process leads a new session; on timeout (wall clock)
   its whole process group is killed with SIGKILL, and it is killed again after every run in case something was left.
   Output is read incrementally and only ``max_output`` characters of each stream are kept (head and tail, with a
   marker line), so a chatty script cannot exhaust the caller's memory.
5. **Temporary directory.** Created with ``mkdtemp`` (mode 0700) and removed after the run, also on errors. The
   files named in ``collect`` are read back first, only when they are regular files inside the run directory.

What is not covered. Reading ordinary files is allowed (the venv, ``pythonpath``, but also anything else the caller's
user can read), and stdout comes back to the caller. Disk use is limited per file only. Code that escapes the audit
hook runs with the caller's user id, so it could write or signal whatever that user (perhaps root) can, and without a
PID namespace it could detach from the process group and outlive the run; running wei-gen as an unprivileged user,
Landlock, seccomp or a container would close that.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

__all__ = ["SandboxResult", "run_python", "sandbox_available"]

log = logging.getLogger(__name__)

BOOT = Path(__file__).resolve().with_name("_sandbox_boot.py")
FILE_SIZE_LIMIT = 64 * 1024 * 1024
OPEN_FILES_LIMIT = 256
NPROC_MARGIN = 16  # processes/threads a run may add to what its user already has (not enforced for root)
MAX_BLOCKED = 1000
_KILL_GRACE = 5.0  # seconds to wait for a killed process and for pipes held open by stragglers

_SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|COOKIE|PRIVATE|AUTH|DSN"
    r"|^(OPENAI|ANTHROPIC|AZURE|AWS|GOOGLE|GCP|GCLOUD|GEMINI|GH|GITHUB|GITLAB|HF|HUGGING[A-Z]*|LANGCHAIN|LANGSMITH"
    r"|COHERE|MISTRAL|GROQ|TOGETHER|DEEPSEEK|VOYAGE|PINECONE|SSH|GPG|NPM|PYPI|TWINE|DOCKER|SLACK|STRIPE|DATABASE)_",
    re.IGNORECASE,
)
_RESERVED_NAME = re.compile(r"^(PATH|HOME|TMPDIR|TMP|TEMP|PYTHON.*|LD_.*|SSL_CERT_.*)$", re.IGNORECASE)
_CREDENTIAL_VALUE = re.compile(r"://[^/\s:@]+:[^/\s@]+@|^sk-[A-Za-z0-9_-]{16,}")


@dataclass
class SandboxResult:
    """What a sandboxed run did."""

    returncode: int | None  # None when killed by the timeout; negative: killed by that signal (e.g. -24 SIGXCPU)
    stdout: str  # truncated to max_output characters, with a marker line saying so
    stderr: str
    timed_out: bool
    duration: float  # seconds, wall clock
    files: dict[str, str] = field(default_factory=dict)  # the `collect` files that exist after the run
    blocked: list[str] = field(default_factory=list)  # what the guard refused, e.g. "open /etc/x (write)"

    @property
    def ok(self) -> bool:
        """The run finished in time with exit status 0."""
        return self.returncode == 0 and not self.timed_out


def sandbox_available() -> dict[str, bool]:
    """Which isolation layers are active on this machine (the audit hook and rlimits always are)."""
    return {"netns": _netns_prefix() is not None, "audit_hook": True, "rlimits": True}


def run_python(
    files: Mapping[str, str],
    argv: Sequence[str],
    *,
    timeout: float = 30.0,
    memory_mb: int = 1024,
    cpu_seconds: int | None = None,
    pythonpath: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    collect: Sequence[str] = (),
    max_output: int = 20_000,
) -> SandboxResult:
    """Run ``python ARGV`` on ``files`` in a fresh temporary directory, confined as the module docstring describes.

    Args:
        files: relative path -> text, written into the run directory (the cwd of the run).
        argv: ``["script.py", *args]``, ``["-m", "module", *args]`` or ``["-c", "code", *args]``.
        timeout: wall-clock seconds; then the whole process group is killed and ``timed_out`` is set.
        memory_mb: address-space limit (``RLIMIT_AS``).
        cpu_seconds: CPU-time limit (``RLIMIT_CPU``); default ``ceil(timeout) + 1``.
        pythonpath: extra import directories (made absolute); readable, not writable, inside.
        env: extra non-secret variables; secret-looking names or values raise ``ValueError``.
        collect: relative paths whose text is returned in ``files`` (missing or unsafe ones are left out).
        max_output: characters kept of stdout and of stderr each.

    Raises:
        ValueError: bad ``argv``, ``files`` or ``collect`` paths, or refused ``env`` entries.
    """
    target = _check_argv(argv)
    extras = _check_env(env or {})
    if timeout <= 0 or memory_mb <= 0 or max_output < 0 or (cpu_seconds is not None and cpu_seconds <= 0):
        raise ValueError("timeout, memory_mb and cpu_seconds must be positive, max_output not negative")
    relative_files = {_relative(name): content for name, content in files.items()}
    relative_collect = [(name, _relative(name)) for name in collect]
    base = Path(tempfile.mkdtemp(prefix="wei-gen-sandbox-")).resolve()
    work = base / "run"
    blocked_log = base / "blocked.log"
    try:
        (work / "tmp").mkdir(parents=True)
        for rel, content in relative_files.items():
            path = work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        command = [
            *(_netns_prefix() or ()),
            sys.executable,
            "-s",
            "-P",
            str(BOOT),
            str(work),
            str(blocked_log),
            "--",
            *target,
        ]
        limits = _limits(memory_mb, cpu_seconds if cpu_seconds is not None else math.ceil(timeout) + 1)
        result = _execute(command, work, _environment(work, pythonpath, extras), limits, timeout, max_output)
        result.files = {name: text for name, rel in relative_collect if (text := _read_back(work, rel)) is not None}
        result.blocked = _read_blocked(blocked_log)
        return result
    finally:
        _remove(base)


def _check_argv(argv: Sequence[str]) -> list[str]:
    target = list(argv)
    if not target or not all(isinstance(arg, str) for arg in target):
        raise ValueError("argv must be a non-empty list of strings")
    if target[0] in ("-m", "-c"):
        if len(target) < 2 or not target[1]:
            raise ValueError(f"argv {target[0]} needs a {'module' if target[0] == '-m' else 'code'} argument")
    elif target[0].startswith("-") or not target[0]:
        raise ValueError("argv must start with a script path, '-m module' or '-c code' (no other python options)")
    return target


def _check_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's extra variables, or ValueError naming every refused one (never its value)."""
    secrets = {value for name, value in os.environ.items() if _SECRET_NAME.search(name) and len(value) >= 8}
    refused: list[str] = []
    for name, value in extra.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            refused.append(f"{name!r} (malformed)")
        elif _RESERVED_NAME.match(name):
            refused.append(f"{name} (set by the sandbox itself)")
        elif _SECRET_NAME.search(name):
            refused.append(f"{name} (looks like a secret)")
        elif _CREDENTIAL_VALUE.search(value) or any(secret in value for secret in secrets):
            refused.append(f"{name} (its value looks like a secret)")
    if refused:
        raise ValueError("sandbox env refused: " + ", ".join(refused))
    return dict(extra)


def _environment(work: Path, pythonpath: Sequence[str], extras: Mapping[str, str]) -> dict[str, str]:
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(work),
        "TMPDIR": str(work / "tmp"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    if pythonpath:
        environment["PYTHONPATH"] = os.pathsep.join(str(Path(entry).resolve()) for entry in pythonpath)
    environment.update(extras)
    return environment


def _relative(name: str) -> PurePosixPath:
    """``name`` as a path that stays inside the run directory, or ValueError."""
    path = PurePosixPath(name)
    if not name or "\0" in name or path.is_absolute() or not path.parts or ".." in path.parts:
        raise ValueError(f"not a relative path inside the sandbox: {name!r}")
    return path


def _limits(memory_mb: int, cpu_seconds: int) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) to set in the child, never above the current hard limits (computed here, not there)."""
    nproc = _nproc_limit()
    wanted = [
        (resource.RLIMIT_AS, memory_mb * 1024 * 1024, memory_mb * 1024 * 1024),
        (resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1),
        (resource.RLIMIT_FSIZE, FILE_SIZE_LIMIT, FILE_SIZE_LIMIT),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_NOFILE, OPEN_FILES_LIMIT, OPEN_FILES_LIMIT),
        (resource.RLIMIT_NPROC, nproc, nproc),
    ]
    limits = []
    for which, soft, hard in wanted:
        current_hard = resource.getrlimit(which)[1]
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        limits.append((which, soft, hard))
    return limits


def _nproc_limit() -> int:
    """RLIMIT_NPROC counts all tasks of the real user: allow a few more than it has now (root is exempt anyway)."""
    if os.getuid() == 0:
        return NPROC_MARGIN
    uid, tasks = str(os.getuid()), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("Uid", "").split()[:1] == [uid]:
            tasks += int(fields.get("Threads", "1").strip() or 1)
    return tasks + NPROC_MARGIN


def _preexec(limits: list[tuple[int, int, int]]) -> Callable[[], None]:
    def apply() -> None:  # runs in the forked child before exec: keep it to system calls
        os.umask(0o077)
        for which, soft, hard in limits:
            resource.setrlimit(which, (soft, hard))

    return apply


@lru_cache(maxsize=1)
def _netns_prefix() -> tuple[str, ...] | None:
    """The ``unshare`` command that runs a program in a fresh network namespace here, or None (checked once)."""
    unshare = shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if unshare is None:
        return None
    try:
        own = os.readlink("/proc/self/ns/net")
    except OSError:
        return None
    probe = "import os; print(os.readlink('/proc/self/ns/net'))"
    for prefix in ((unshare, "--net", "--"), (unshare, "--net", "--map-root-user", "--")):
        try:
            done = subprocess.run(
                [*prefix, sys.executable, "-S", "-c", probe],
                capture_output=True,
                text=True,
                timeout=10,
                env={"PATH": "/usr/bin:/bin"},
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0 and done.stdout.strip() not in ("", own):
            return prefix
    return None


class _Capture:
    """Keeps the first and last bytes of a stream and counts the rest."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.cap = 4 * max_chars + 4  # bytes: enough for max_chars characters of UTF-8 at either end
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > 2 * self.cap:
                del self.tail[: -self.cap]

    def text(self) -> str:
        keep_head = self.max_chars // 2
        keep_tail = self.max_chars - keep_head
        if self.total == len(self.head) + len(self.tail):
            whole = (self.head + self.tail).decode("utf-8", "replace")
            if len(whole) <= self.max_chars:
                return whole
            head, tail = whole[:keep_head], whole[len(whole) - keep_tail :]
        else:
            head = self.head.decode("utf-8", "replace")[:keep_head]
            tail_text = self.tail.decode("utf-8", "replace")
            tail = tail_text[len(tail_text) - keep_tail :]
        marker = (
            f"[... wei-gen sandbox: output truncated, {self.total} bytes in all; "
            f"the first {keep_head} and last {keep_tail} characters are kept ...]"
        )
        return f"{head}\n{marker}\n{tail}"


def _execute(
    command: list[str],
    work: Path,
    environment: dict[str, str],
    limits: list[tuple[int, int, int]],
    timeout: float,
    max_output: int,
) -> SandboxResult:
    started = time.monotonic()
    deadline = started + timeout
    proc = subprocess.Popen(
        command,
        cwd=work,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
        preexec_fn=_preexec(limits),  # rlimits must be set in the child; it makes only system calls
    )
    captures = {"stdout": _Capture(max_output), "stderr": _Capture(max_output)}
    timed_out = False
    try:
        timed_out = _pump(proc, captures, deadline)
        if not timed_out:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        _kill_group(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_KILL_GRACE)
        if timed_out:  # whatever was written before the kill
            _pump(proc, captures, time.monotonic() + 1.0)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return SandboxResult(
        returncode=None if timed_out else proc.returncode,
        stdout=captures["stdout"].text(),
        stderr=captures["stderr"].text(),
        timed_out=timed_out,
        duration=time.monotonic() - started,
    )


def _pump(proc: subprocess.Popen[bytes], captures: dict[str, _Capture], deadline: float) -> bool:
    """Read stdout and stderr until both close; True if ``deadline`` passed first.

    If the process has exited but its pipes stay open (something it left behind holds them), stop after a grace
    period instead of waiting for the deadline.
    """
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        for name in captures:
            stream = getattr(proc, name)
            if stream is not None and not stream.closed:
                os.set_blocking(stream.fileno(), False)
                selector.register(stream.fileno(), selectors.EVENT_READ, captures[name])
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                return True
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > _KILL_GRACE:
                return False
            for key, _ in selector.select(min(deadline - now, 0.5)):
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if chunk:
                    key.data.feed(chunk)
                else:
                    selector.unregister(key.fd)
    return False


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _read_back(work: Path, rel: PurePosixPath) -> str | None:
    """The text of a collected file: only a regular, singly linked file inside ``work`` (no symlink out, no FIFO)."""
    try:
        path = (work / rel).resolve(strict=True)
        info = path.lstat()
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(work) or not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        return None
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None


def _read_blocked(blocked_log: Path) -> list[str]:
    try:
        with blocked_log.open("rb") as handle:  # the sandboxed code may have padded it (up to RLIMIT_FSIZE)
            text = handle.read(MAX_BLOCKED * 600).decode("utf-8", "replace")
    except OSError:
        return []
    return [line[:500] for line in text.splitlines()[:MAX_BLOCKED] if line]


def _remove(base: Path) -> None:
    """Remove the run's directory even if the sandboxed code made parts of it unreadable."""

    def retry(function: Callable[..., object], path: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
            function(path)

    if sys.version_info >= (3, 12):
        shutil.rmtree(base, onexc=retry)
    else:
        shutil.rmtree(base, onerror=retry)
    if base.exists():
        log.warning("could not remove the sandbox directory %s", base)
