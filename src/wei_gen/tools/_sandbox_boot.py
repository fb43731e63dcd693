"""Bootstrap of a sandboxed run: install the audit-hook guard, then run the target as ``python`` would.

``wei_gen.tools.sandbox`` starts it as ``python -s -P _sandbox_boot.py WORK_DIR LOG_FILE -- TARGET...`` where TARGET
is ``script.py args...``, ``-m module args...`` or ``-c code args...``. It runs inside the sandboxed interpreter, where
``wei_gen`` may not be importable, so it uses the standard library only.

The guard (``sys.addaudithook``; audit hooks cannot be removed once added) refuses, by raising ``PermissionError``
(``ImportError`` for imports):

* network: ``socket.connect``/``bind``/``sendto``/``sendmsg`` (any address, loopback included; only binding a loopback
  address to port 0, a common feature probe, passes), name lookups, and sockets other than unix/inet/inet6 (netlink,
  packet);
* processes: ``subprocess.Popen``, ``os.system``, ``os.exec*``, ``os.fork``/``forkpty``, ``os.posix_spawn``,
  ``_posixsubprocess.fork_exec`` (what ``multiprocessing`` uses underneath), new subinterpreters; signals,
  ``pidfd_open`` and ``prlimit`` aimed at any process but this one;
* files: opening for writing (mode ``w``/``a``/``x``/``+`` or ``O_WRONLY``/``O_RDWR``/``O_CREAT``/``O_TRUNC``/
  ``O_APPEND``), removing, renaming, creating directories, truncating or changing metadata of anything outside
  WORK_DIR, after resolving symlinks (also ``/proc/self/fd``, ``/proc/self/cwd``); sqlite databases outside it
  (sqlite opens files in C); hard links, ``mknod``, ``mkfifo``; symlinks unless their target is an absolute path
  inside WORK_DIR; directory descriptors outside WORK_DIR and ``dir_fd``-relative ``..`` paths (the events do not
  say where a ``dir_fd`` points); reading another process's ``/proc/<pid>`` (its environment holds the caller's
  secrets) or device nodes other than ``/dev/null``, ``/dev/zero``, ``/dev/full``, ``/dev/*random``;
* native code: ``ctypes`` (its import fails with ``ImportError``, which numpy copes with; z3 needs it, so z3 is not
  usable inside), ``dlopen``, sqlite extensions, the ``_dbm``/``_gdbm`` C modules (``dbm`` falls back to
  ``dbm.dumb``, which uses ``open``); raising resource limits; re-importing any of these modules; changing the
  guard's own functions.

Each refusal is appended to LOG_FILE (outside WORK_DIR, so the sandboxed code cannot open it; it can write to the
inherited descriptor) and the parent reports it in ``SandboxResult.blocked``.

The guard binds everything it calls as default arguments when this module is imported, before any sandboxed code
runs, reads no global or builtin name at call time and keeps no mutable state, so monkeypatching ``os.path``,
``posix`` or ``builtins`` does not disarm it (the tests check its bytecode). Functions that Python 3.11 does not
audit (``fork_exec``, ``mknod``, ``mkfifo``, ``pidfd_open``) are replaced by stand-ins that raise an event instead;
the stand-ins keep no reference to the originals.

Limits: audit hooks are not a security boundary. Code that gets native execution (an extension module written to
WORK_DIR and loaded through ``importlib``'s loaders, which also re-creates the replaced functions; crafted bytecode
or ``.pyc`` files; interpreter bugs) bypasses every check here. That is why the parent also runs this process in a
fresh network namespace and under resource limits, which hold against native code; file-system and process
protection against such code rests on the operating-system user alone.
"""

from __future__ import annotations

import posix
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing would add ~5 ms to every sandboxed run
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

_WRITE_FLAGS = posix.O_WRONLY | posix.O_RDWR | posix.O_CREAT | posix.O_TRUNC | posix.O_APPEND
_S_IFMT, _S_IFLNK, _S_IFDIR, _S_IFCHR, _S_IFBLK = 0o170000, 0o120000, 0o040000, 0o020000, 0o060000
_MAX_SYMLINKS = 40

_NETWORK = frozenset(
    {
        "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
        "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo", "socket.sethostname",
    }
)  # fmt: skip
_PROCESSES = frozenset(
    {
        "subprocess.Popen", "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn",
        "pty.spawn", "_posixsubprocess.fork_exec", "cpython.PyInterpreterState_New",
    }
)  # fmt: skip
# Also refused: os.link (a hard link would make an outside file writable), loading native code into sqlite, and the
# unaudited calls that main() replaces with stand-ins raising these events (see _STAND_INS).
_ALWAYS = _NETWORK | _PROCESSES | {
    "ctypes.dlopen", "ctypes.dlsym", "os.link", "resource.setrlimit", "sqlite3.enable_load_extension",
    "sqlite3.load_extension", "os.mknod", "os.mkfifo", "os.pidfd_open",
}  # fmt: skip
# Events naming paths: event -> ((path index, dir_fd index or -1), ...).
_PATH_EVENTS: dict[str, tuple[tuple[int, int], ...]] = {
    "os.remove": ((0, 1),),
    "os.rmdir": ((0, 1),),
    "os.mkdir": ((0, 2),),
    "os.rename": ((0, 2), (1, 3)),
    "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),),
    "os.chflags": ((0, -1),),
    "os.utime": ((0, 3),),
    "os.truncate": ((0, -1),),
    "os.setxattr": ((0, -1),),
    "os.removexattr": ((0, -1),),
    "shutil.rmtree": ((0, 1),),
}
# Events whose first argument says it all in ``blocked`` (the rest: dir_fd, mode, flags...).
_FIRST_ARG = frozenset(_PATH_EVENTS) | {
    "open", "import", "os.system", "os.exec", "os.posix_spawn", "ctypes.dlopen", "os.mknod", "os.mkfifo",
    "os.pidfd_open", "sqlite3.connect",
}  # fmt: skip
_REFUSED_IMPORTS = frozenset(
    {
        "ctypes", "_ctypes", "_posixsubprocess", "_testcapi", "_testinternalcapi", "_testmultiphase", "_testbuffer",
        "_testimportmultiple", "_testsinglephase", "_xxsubinterpreters", "_xxinterpchannels", "_dbm", "_gdbm",
        "posix", "os",
    }
)  # fmt: skip
_WATCHED = _ALWAYS | frozenset(_PATH_EVENTS) | {
    "open", "os.symlink", "os.kill", "os.killpg", "resource.prlimit", "import", "socket.__new__", "sqlite3.connect",
    "object.__setattr__", "object.__delattr__",
}  # fmt: skip
# Refusals the standard library expects and handles itself: platform.processor() (behind platform.platform()) runs
# `uname -p` and reports "" when that fails.
_QUIET = frozenset({"subprocess.Popen uname -p"})
_DEVICES_OK = frozenset({"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"})
_WRITABLE_OUTSIDE = frozenset({"/dev/null", "/dev/full"})
_PROC_REFUSED = frozenset({"/proc/kcore", "/proc/kmsg", "/proc/kallsyms"})
_SOCKET_FAMILIES = frozenset({-1, 1, 2, 10})  # unknown (from a descriptor), AF_UNIX, AF_INET, AF_INET6 on Linux


class _Refused(Exception):
    """Raised by the guard's helpers as ``_Refused(tag, reason)``; the guard turns it into ``PermissionError``."""


def _text(
    value: object, _isinstance: Callable[[object, Any], bool] = isinstance, _str: type[str] = str,
    _bytes: type[bytes] = bytes,
) -> str | None:  # fmt: skip
    """An exact ``str`` for a path argument (a ``str`` subclass could lie in its methods), or None for others."""
    if _isinstance(value, _str):
        return _str.__str__(value)
    if _isinstance(value, _bytes):
        return _bytes.decode(value, "utf-8", "surrogateescape")  # type: ignore[arg-type]
    return None


def _resolve(
    path: str,
    _getcwd: Callable[[], str] = posix.getcwd,
    _lstat: Callable[[str], posix.stat_result] = posix.lstat,
    _readlink: Callable[[str], str] = posix.readlink,
    _errors: tuple[type[Exception], ...] = (OSError, ValueError),
    _refused: type[Exception] = _Refused,
    _max_links: int = _MAX_SYMLINKS,
    _ifmt: int = _S_IFMT,
    _iflnk: int = _S_IFLNK,
) -> tuple[str, int, bool]:
    """Resolve symlinks as the kernel would: (absolute path, file type bits or 0 when missing, magic).

    Missing components are kept as written. ``magic`` marks a ``/proc/<pid>/fd/N``-style link to something that is
    not a path (a pipe, a socket): reopening it reaches only that object.
    """
    if not path.startswith("/"):
        path = _getcwd() + "/" + path
    todo = path.split("/")
    todo.reverse()
    done: list[str] = []
    links = 0
    while todo:
        name = todo.pop()
        if name in ("", "."):
            continue
        if name == "..":
            if done:
                done.pop()
            continue
        done.append(name)
        current = "/" + "/".join(done)
        try:
            mode = _lstat(current).st_mode
        except _errors:
            continue
        if mode & _ifmt != _iflnk:
            continue
        links += 1
        if links > _max_links:
            raise _refused("symlink loop", "too many levels of symbolic links")
        target = _readlink(current)
        if done[0] == "proc" and not target.startswith("/") and ":" in target:
            return current, 0, True
        done.pop()
        if target.startswith("/"):
            done.clear()
        parts = target.split("/")
        parts.reverse()
        todo.extend(parts)
    resolved = "/" + "/".join(done)
    try:
        mode = _lstat(resolved).st_mode & _ifmt
    except _errors:
        mode = 0
    return resolved, mode, False


_FUNCTION = type(_text)


def _check_path(
    value: object,
    work: str,
    write: bool,
    _text: Callable[[object], str | None] = _text,
    _resolve: Callable[[str], tuple[str, int, bool]] = _resolve,
    _refused: type[Exception] = _Refused,
    _devices_ok: frozenset[str] = _DEVICES_OK,
    _writable_outside: frozenset[str] = _WRITABLE_OUTSIDE,
    _proc_refused: frozenset[str] = _PROC_REFUSED,
    _getpid: Callable[[], int] = posix.getpid,
    _devices: tuple[int, int] = (_S_IFCHR, _S_IFBLK),
    _str: type[str] = str,
) -> tuple[str, int]:
    """Check one path argument: (resolved path, file type bits), or raise ``_Refused``; file descriptors pass."""
    text = _text(value)
    if text is None:  # a file descriptor: checked when it was opened
        return "", 0
    resolved, kind, magic = _resolve(text)
    if resolved.startswith("/proc/"):
        pid = resolved.split("/")[2]
        if (pid.isdigit() and pid != _str(_getpid())) or resolved in _proc_refused:
            raise _refused("other process", "other processes are off limits")
    if magic:
        return resolved, kind
    if write and not (resolved == work or resolved.startswith(work + "/")) and resolved not in _writable_outside:
        raise _refused("write", "only the run's own directory is writable")
    if kind in _devices and resolved not in _devices_ok:
        raise _refused("device", "devices are off limits")
    return resolved, kind


def _has_dotdot(value: object, _text: Callable[[object], str | None] = _text) -> bool:
    text = _text(value)
    return text is not None and not text.startswith("/") and ".." in text.split("/")


def _show(value: object, _text: Callable[[object], str | None] = _text, _str: type[str] = str) -> str:
    text = _text(value)
    return _str(value) if text is None else text


def _describe(
    event: str,
    args: tuple[Any, ...],
    _show: Callable[[object], str] = _show,
    _len: Callable[[Any], int] = len,
    _int: type[int] = int,
    _tuple: Any = tuple,
    _first: frozenset[str] = _FIRST_ARG,
    _map: Any = map,
    _sequences: tuple[type, ...] = (list, tuple),
) -> str:
    """A one-line account of an event for ``blocked``, e.g. ``socket.connect 10.0.0.1:80``."""
    detail: Any
    if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
        detail = args[1]
    elif event == "socket.getaddrinfo":
        detail = (args[0], args[1])
    elif event == "subprocess.Popen":
        detail = args[1]
    elif event in ("os.rename", "os.symlink"):
        detail = f"{args[0]} -> {args[1]}" if event == "os.rename" else f"{args[1]} -> {args[0]}"
    elif event == "os.kill" or event == "os.killpg":
        detail = f"{args[0]} signal {args[1]}"
    elif _len(args) == 0:
        detail = ""
    elif event in _first or _len(args) == 1:
        detail = args[0]
    else:
        detail = args
    if detail.__class__ is _tuple and _len(detail) == 2 and detail[1].__class__ is _int:  # (host, port)
        text = f"{detail[0]}:{detail[1]}"
    elif detail.__class__ in _sequences:
        text = " ".join(_map(_show, detail))
    else:
        text = _show(detail)
    line = f"{event} {text}" if text else event
    return line.replace("\n", "\\n")[:500]


def _decide(
    event: str,
    args: tuple[Any, ...],
    work: str,
    pid: int,
    pgid: int,
    boot_file: str,
    _check_path: Callable[..., tuple[str, int]] = _check_path,
    _has_dotdot: Callable[[object], bool] = _has_dotdot,
    _text: Callable[[object], str | None] = _text,
    _describe: Callable[[str, tuple[Any, ...]], str] = _describe,
    _refused: type[Exception] = _Refused,
    _always: frozenset[str] = _ALWAYS,
    _path_events: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = tuple(_PATH_EVENTS.items()),
    _refused_imports: frozenset[str] = _REFUSED_IMPORTS,
    _write_flags: int = _WRITE_FLAGS,
    _dir: int = _S_IFDIR,
    _function: Any = _FUNCTION,
    _str: type[str] = str,
    _no_dir_fd: tuple[None, int] = (None, -1),
    _tuple: Any = tuple,
    _int: Any = int,
    _loopback: frozenset[str] = frozenset({"127.0.0.1", "::1"}),
    _families: frozenset[int] = _SOCKET_FAMILIES,
    _fspath: Callable[[Any], Any] = posix.fspath,
    _modules: dict[str, Any] = sys.modules,  # the interpreter's own dict, even if sys.modules is rebound
) -> str | None:
    """None if the event may proceed, else its line for ``blocked``; path checks raise ``_Refused`` instead."""
    if event == "open":
        path, mode, flags = args
        write = (flags & _write_flags) != 0
        if mode.__class__ is _str:
            write = write or "w" in mode or "a" in mode or "x" in mode or "+" in mode
        elif _has_dotdot(path):  # os.open: its dir_fd is not in the event
            raise _refused("'..' with os.open", "relative paths with '..' are refused for os.open")
        resolved, kind = _check_path(path, work, write)
        if mode is None and kind == _dir and not (resolved == work or resolved.startswith(work + "/")):
            raise _refused("directory", "directory descriptors outside the run's own directory are refused")
        return None
    for name, pairs in _path_events:
        if name == event:
            for path_index, fd_index in pairs:
                if fd_index >= 0 and args[fd_index] not in _no_dir_fd and _has_dotdot(args[path_index]):
                    raise _refused("'..' with dir_fd", "relative paths with '..' are refused with dir_fd")
                _check_path(args[path_index], work, True)
            return None
    if event in _always:
        address: Any = args[1] if event == "socket.bind" else None
        # Binding a loopback address to port 0 only probes (urllib3's IPv6 check, free-port lookups); connecting stays
        # refused, and inside the network namespace nothing can reach it anyway.
        if (
            address.__class__ is _tuple
            and address[1].__class__ is _int
            and address[1] == 0
            and (_text(address[0]) or "") in _loopback
        ):
            return None
        return _describe(event, args)
    if event == "os.symlink":
        target, link, dir_fd = args
        if dir_fd not in _no_dir_fd and _has_dotdot(link):
            raise _refused("'..' with dir_fd", "relative paths with '..' are refused with dir_fd")
        _check_path(link, work, True)
        text = _text(target)
        if text is None or not text.startswith(work + "/") or ".." in text.split("/"):
            raise _refused("symlink target", "symlinks must point to an absolute path inside the run's directory")
        return None
    if event == "socket.__new__":  # no netlink (network configuration) or packet sockets; connections are refused
        return None if args[1] in _families else f"socket.__new__ family {args[1]}"
    if event == "sqlite3.connect":  # sqlite opens its files in C, without an "open" event
        database = _text(args[0])
        if database is None:
            database = _text(_fspath(args[0]))
        if database is not None and database.startswith("file:"):  # a URI (when uri=True): its path part
            if "%" in database:
                raise _refused("uri", "percent-encoded sqlite URIs are refused")
            database = database[5:].split("?")[0].split("#")[0]
            if database.startswith("//"):
                slash = database.find("/", 2)
                database = database[slash:] if slash >= 0 else ""
        if database not in ("", ":memory:"):
            _check_path(database, work, True)
        return None
    if event == "os.kill":
        return None if args[0] in (0, pid, -pgid) else _describe(event, args)
    if event == "os.killpg":
        return None if args[0] in (0, pgid) else _describe(event, args)
    if event == "resource.prlimit":
        return None if args[2] is None else _describe(event, args)
    if event == "import":  # a None entry in sys.modules (see main) fails the import quietly, as it should
        module = _text(args[0])
        return _describe(event, args) if module in _refused_imports and _modules.get(module, 0) is not None else None
    if event == "object.__setattr__" or event == "object.__delattr__":
        obj: Any = args[0]
        if obj.__class__ is _function and obj.__code__.co_filename == boot_file:
            return f"{event} {args[1]} of the sandbox guard"
    return None


def _make_guard(work: str, log_fd: int, boot_file: str) -> Callable[[str, tuple[Any, ...]], None]:
    """The audit hook for a run in ``work``; everything it uses is bound now, as default arguments."""

    def guard(
        event: str,
        args: tuple[Any, ...],
        _work: str = work,
        _log_fd: int = log_fd,
        _boot_file: str = boot_file,
        _pid: int = posix.getpid(),
        _pgid: int = posix.getpgrp(),
        _watched: frozenset[str] = _WATCHED,
        _quiet: frozenset[str] = _QUIET,
        _decide: Callable[..., str | None] = _decide,
        _describe: Callable[[str, tuple[Any, ...]], str] = _describe,
        _refused: type[Exception] = _Refused,
        _write: Callable[[int, bytes], int] = posix.write,
        _str: type[str] = str,
        _permission_error: type[Exception] = PermissionError,
        _import_error: type[Exception] = ImportError,
        _errors: tuple[type[Exception], ...] = (OSError, ValueError),
    ) -> None:
        if event not in _watched:
            return
        reason = "not allowed in the sandbox"
        try:
            line = _decide(event, args, _work, _pid, _pgid, _boot_file)
        except _refused as exc:
            tag, reason = exc.args
            line = _describe(event, args) + " (" + tag + ")"
        if line is None:
            return
        if line in _quiet:  # refused all the same, but not the script's doing: no line in `blocked`
            raise _permission_error(f"wei-gen sandbox refused {line}: {reason}")
        try:  # noqa: SIM105 - contextlib.suppress would be a global lookup, which the guard must not make
            _write(_log_fd, _str.encode(line + "\n", "utf-8", "backslashreplace"))
        except _errors:
            pass
        message = f"wei-gen sandbox refused {line}: {reason}"
        if event == "import":
            raise _import_error(message)
        raise _permission_error(message)

    return guard


def _stand_in(event: str) -> Callable[..., NoReturn]:
    """A stand-in for an unaudited function: it raises ``event`` (which the guard refuses), never calls the original.

    Holding no reference to the original matters: the stand-in is reachable from sandboxed code.
    """

    def refuse(
        *args: object, _event: str = event, _audit: Callable[..., None] = sys.audit, **kwargs: object
    ) -> NoReturn:
        _audit(_event, args[0] if args else None)
        raise PermissionError(f"wei-gen sandbox refused {_event}")

    return refuse


# Unaudited in Python 3.11: module -> functions replaced by stand-ins. fork_exec is what multiprocessing and
# subprocess use underneath; mknod/mkfifo create files anywhere; a pidfd can signal any process.
_STAND_INS = {
    "_posixsubprocess": {"fork_exec": "_posixsubprocess.fork_exec"},
    "posix": {"mknod": "os.mknod", "mkfifo": "os.mkfifo", "pidfd_open": "os.pidfd_open"},
    "os": {"mknod": "os.mknod", "mkfifo": "os.mkfifo", "pidfd_open": "os.pidfd_open"},
}


def _run(target: list[str], work: str) -> None:
    """Run the target as ``python`` would, with ``sys.argv`` and ``sys.path[0]`` set the same way."""
    if target[0] == "-m":
        import runpy

        sys.argv = [target[1], *target[2:]]
        sys.path.insert(0, work)
        runpy.run_module(target[1], run_name="__main__", alter_sys=True)
        return
    main = type(sys)("__main__")  # a fresh __main__ module; runpy.run_path would cost an import of ~3 ms
    if target[0] == "-c":
        sys.argv = ["-c", *target[2:]]
        sys.path.insert(0, work)
        code = compile(target[1], "<string>", "exec")
    else:
        sys.argv = list(target)
        script = target[0] if target[0].startswith("/") else posix.getcwd() + "/" + target[0]
        sys.path.insert(0, script.rsplit("/", 1)[0])
        with open(script, "rb") as handle:
            code = compile(handle.read(), script, "exec")
        main.__file__ = script
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def main(argv: list[str]) -> None:
    """Install the guard and run the target; exit like ``python TARGET...`` would."""
    if len(argv) < 5 or argv[3] != "--":
        sys.stderr.write("usage: _sandbox_boot.py WORK_DIR LOG_FILE -- (script.py | -m module | -c code) [args...]\n")
        raise SystemExit(2)
    work, log_file, target = argv[1], argv[2], argv[4:]
    log_fd = posix.open(log_file, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC, 0o600)
    import _posixsubprocess  # noqa: F401 - imported to be patched below
    import os  # noqa: F401 - imported to be patched below

    for module, names in _STAND_INS.items():
        for name, event in names.items():
            if hasattr(sys.modules[module], name):
                setattr(sys.modules[module], name, _stand_in(event))
    # `import ctypes` fails with ImportError, quietly (numpy copes); dbm falls back to dbm.dumb, which uses open().
    for name in ("ctypes", "_ctypes", "_dbm", "_gdbm"):
        sys.modules[name] = None  # type: ignore[assignment]
    boot_file = main.__code__.co_filename
    sys.addaudithook(_make_guard(work, log_fd, boot_file))
    try:
        _run(target, work)
    except SystemExit:
        raise
    except BaseException as exc:  # print the traceback without this module's and runpy's frames
        hidden = {boot_file, "<frozen runpy>", getattr(sys.modules.get("runpy"), "__file__", boot_file)}
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename in hidden:
            tb = tb.tb_next
        last = tb
        while last is not None and last.tb_next is not None:
            if last.tb_next.tb_frame.f_code.co_filename == boot_file:  # the guard raising: cut it off
                last.tb_next = None
            last = last.tb_next
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main(sys.argv)
