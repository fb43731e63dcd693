"""The sandbox for generated code: hostile scripts are stopped, ordinary ones run, and the caller is unharmed.

Each hostile script prints its working directory first (``CWD <path>``); afterwards that directory must be gone and
no process may still mention it, the caller's environment must be unchanged and its files untouched.
"""

from __future__ import annotations

import dis
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import types
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from wei_gen.tools import _sandbox_boot, sandbox
from wei_gen.tools.sandbox import SandboxResult, run_python, sandbox_available

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LOOKUPS = ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF")
PRINT_CWD = "import os\nprint('CWD', os.getcwd(), flush=True)\n"


def run_script(script: str, *args: str, **options: object) -> SandboxResult:
    return run_python({"main.py": PRINT_CWD + textwrap.dedent(script)}, ["main.py", *args], **options)  # type: ignore[arg-type]


def sandbox_cwd(result: SandboxResult) -> Path:
    first = result.stdout.splitlines()[0]
    assert first.startswith("CWD "), result.stdout
    return Path(first.removeprefix("CWD "))


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


@pytest.fixture
def unharmed() -> Iterator[list[SandboxResult]]:
    """Collects the runs of a test; afterwards checks the caller's environment, temp dirs and processes."""

    def environment() -> dict[str, str]:
        return {name: value for name, value in os.environ.items() if name != "PYTEST_CURRENT_TEST"}

    before = environment()
    runs: list[SandboxResult] = []
    yield runs
    assert environment() == before
    for result in runs:
        cwd = sandbox_cwd(result)
        assert cwd.name == "run" and cwd.parent.name.startswith("wei-gen-sandbox-")
        assert not cwd.parent.exists(), "the sandbox directory was not removed"
        assert processes_mentioning(str(cwd)) == [], "a sandboxed process outlived its run"


# --- hostile scripts ---------------------------------------------------------------------------------------------


def test_network_is_refused_even_to_loopback(unharmed: list[SandboxResult]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = run_script(
            """
            import socket, sys
            port = int(sys.argv[1])
            attempts = {
                "loopback": lambda: socket.create_connection(("127.0.0.1", port), timeout=2),
                "raw loopback": lambda: socket.socket().connect(("127.0.0.1", port)),
                "connect_ex": lambda: socket.socket().connect_ex(("127.0.0.1", port)) or 1 / 0,
                "remote": lambda: socket.socket().connect(("10.0.0.1", 80)),
                "dns": lambda: socket.getaddrinfo("example.com", 443),
                "udp": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", port)),
                "bind": lambda: socket.socket().bind(("0.0.0.0", 8080)),
            }
            for name, attempt in attempts.items():
                try:
                    attempt()
                    print(name, "SUCCEEDED")
                except Exception as exc:
                    print(name, "failed:", exc)
            """,
            str(port),
        )
        unharmed.append(result)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert result.ok, result.stderr
    assert "SUCCEEDED" not in result.stdout
    assert result.stdout.count("failed:") == 7
    for entry in (
        f"socket.getaddrinfo 127.0.0.1:{port}",
        f"socket.connect 127.0.0.1:{port}",
        "socket.connect 10.0.0.1:80",
        "socket.getaddrinfo example.com:443",
        f"socket.sendto 127.0.0.1:{port}",
        "socket.bind 0.0.0.0:8080",
    ):
        assert entry in result.blocked


@pytest.mark.skipif(not sandbox_available()["netns"], reason="no network namespaces here (unshare --net)")
def test_network_namespace_alone_stops_native_connections() -> None:
    """Layer 3 without the audit hook: what native code (which bypasses the hook) would face."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        prefix = sandbox._netns_prefix()
        assert prefix is not None
        probe = f"import socket; print(socket.socket().connect_ex(('127.0.0.1', {port})))"
        done = subprocess.run([*prefix, sys.executable, "-S", "-c", probe], capture_output=True, text=True, check=True)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert done.stdout.strip() not in ("", "0")  # ENETUNREACH: no interface is up in the new namespace


def test_writes_outside_the_run_directory_are_refused(tmp_path: Path, unharmed: list[SandboxResult]) -> None:
    tag = uuid.uuid4().hex
    in_tmp = Path(tempfile.gettempdir()) / f"wei-gen-evil-{tag}"
    in_repo = ROOT / f"evil-{tag}.txt"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    result = run_script(
        """
        import os, pathlib, shutil, sys
        in_tmp, in_repo, victim = sys.argv[1:4]
        attempts = {
            "open /tmp": lambda: open(in_tmp, "w").write("x"),
            "write_text repo": lambda: pathlib.Path(in_repo).write_text("x"),
            "os.open": lambda: os.open(in_tmp, os.O_WRONLY | os.O_CREAT),
            "append victim": lambda: open(victim, "a").write("x"),
            "remove victim": lambda: os.remove(victim),
            "rename victim": lambda: os.rename(victim, victim + ".moved"),
            "rmtree": lambda: shutil.rmtree(os.path.dirname(victim)),
            "relative escape": lambda: open("../../" + os.path.basename(in_tmp), "w"),
            "symlink out": lambda: os.symlink(in_tmp, "link"),
            "dir fd": lambda: os.open(os.path.dirname(in_tmp), os.O_RDONLY),
            "mkdir": lambda: os.mkdir(in_tmp),
            "chmod": lambda: os.chmod(victim, 0o777),
            "sqlite": lambda: __import__("sqlite3").connect(in_tmp + ".db"),
            "mkstemp": lambda: __import__("tempfile").mkstemp(dir=os.path.dirname(in_tmp)),
            "mknod": lambda: os.mknod(in_tmp),
            "reopen fd": lambda: open(f"/proc/self/fd/{os.open(victim, os.O_RDONLY)}", "w"),
        }
        for name, attempt in attempts.items():
            try:
                attempt()
                print(name, "SUCCEEDED")
            except OSError as exc:
                print(name, "failed:", exc)
        os.chdir(os.path.dirname(in_tmp))
        try:
            open(os.path.basename(in_tmp), "w")
            print("after chdir SUCCEEDED")
        except OSError as exc:
            print("after chdir failed:", exc)
        """,
        str(in_tmp),
        str(in_repo),
        str(victim),
    )
    unharmed.append(result)
    assert result.ok, result.stderr
    assert "SUCCEEDED" not in result.stdout
    assert not in_tmp.exists() and not in_repo.exists() and not Path(f"{in_tmp}.db").exists()
    assert victim.read_text() == "precious" and oct(victim.stat().st_mode & 0o777) != "0o777"
    assert list(tmp_path.iterdir()) == [victim]
    assert f"open {in_tmp} (write)" in result.blocked
    assert f"open {in_repo} (write)" in result.blocked
    assert f"os.remove {victim} (write)" in result.blocked
    assert f"os.symlink link -> {in_tmp} (symlink target)" in result.blocked


def test_an_endless_loop_is_killed_at_the_timeout(unharmed: list[SandboxResult]) -> None:
    result = run_script(
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(0.01)
        """,
        timeout=2,
    )
    unharmed.append(result)
    assert result.timed_out and result.returncode is None and not result.ok
    assert result.duration < 2 + 5


def test_a_busy_loop_hits_the_cpu_limit(unharmed: list[SandboxResult]) -> None:
    result = run_script("while True:\n    pass\n", timeout=30, cpu_seconds=1)
    unharmed.append(result)
    assert not result.timed_out
    assert result.returncode is not None and result.returncode < 0  # SIGXCPU, or SIGKILL at the hard limit
    assert result.duration < 30


def test_allocating_4_gb_raises_memory_error(unharmed: list[SandboxResult]) -> None:
    result = run_script("block = bytearray(4 * 1024**3)\nprint('ALLOCATED')\n", memory_mb=1024)
    unharmed.append(result)
    assert result.returncode == 1 and not result.timed_out
    assert "MemoryError" in result.stderr and "ALLOCATED" not in result.stdout


def test_secrets_of_the_caller_are_out_of_reach(monkeypatch: pytest.MonkeyPatch, unharmed: list[SandboxResult]) -> None:
    secret = f"sk-test-{uuid.uuid4().hex}"
    with monkeypatch.context() as patch:  # undone before `unharmed` compares the environment
        patch.setenv("OPENAI_API_KEY", secret)
        result = run_script(
            """
            import os, pathlib
            print("key:", os.environ.get("OPENAI_API_KEY"))
            print("environ:", dict(os.environ))
            pids = [str(os.getppid()), "1"] + [p.name for p in pathlib.Path("/proc").iterdir() if p.name.isdigit()]
            for pid in pids:
                try:
                    print(pid, open(f"/proc/{pid}/environ", "rb").read())
                except OSError as exc:
                    pass
            """
        )
        assert os.environ["OPENAI_API_KEY"] == secret
    unharmed.append(result)
    assert result.ok, result.stderr
    assert "key: None" in result.stdout
    assert secret not in result.stdout + result.stderr and "OPENAI" not in result.stdout
    assert f"open /proc/{os.getpid()}/environ (other process)" in result.blocked


def test_secret_looking_env_extras_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"sk-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    for extra in (
        {"OPENAI_API_KEY": "x"},
        {"MY_TOKEN": "x"},
        {"AWS_REGION": "x"},
        {"SIMLAB": secret},
        {"DB": "postgresql://user:pw@host/db"},
        {"PYTHONSTARTUP": "x"},
        {"LD_PRELOAD": "x"},
        {"PATH": "/"},
    ):
        with pytest.raises(ValueError, match="sandbox env refused"):
            run_python({"main.py": ""}, ["main.py"], env=extra)
    result = run_python(
        {"main.py": "import os; print(os.environ['WEI_GEN_SIMLAB'])"}, ["main.py"], env={"WEI_GEN_SIMLAB": "pcr"}
    )
    assert result.ok and result.stdout == "pcr\n"


def test_processes_ctypes_and_tampering_are_refused(tmp_path: Path, unharmed: list[SandboxResult]) -> None:
    target = tmp_path / "tampered.txt"
    result = run_script(
        """
        import builtins, gc, os, posix, socket, subprocess, sys
        attempts = {
            "subprocess": lambda: subprocess.run(["/bin/true"]),
            "system": lambda: os.system("true"),
            "fork": lambda: os.fork(),
            "exec": lambda: os.execv("/bin/true", ["true"]),
            "spawn": lambda: os.posix_spawn("/bin/true", ["true"], {}),
            "multiprocessing": lambda: __import__("multiprocessing").get_context("spawn").Process(target=print).start(),
            "kill parent": lambda: os.kill(os.getppid(), 0),
            "pidfd": lambda: os.pidfd_open(os.getppid()),
            "netlink": lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW),
            "ctypes": lambda: __import__("ctypes"),
            "rlimit": lambda: __import__("resource").setrlimit(__import__("resource").RLIMIT_CPU, (-1, -1)),
        }
        for name, attempt in attempts.items():
            try:
                attempt()
                print(name, "SUCCEEDED")
            except (OSError, ImportError) as exc:
                print(name, "failed:", exc)
        guards = [o for o in gc.get_objects() if getattr(getattr(o, "__code__", None), "co_name", "") == "guard"]
        print("guards", len(guards))
        for guard in guards:
            for attr, value in (("__defaults__", None), ("__code__", (lambda event, args: None).__code__)):
                try:
                    setattr(guard, attr, value)
                    print("tamper", attr, "SUCCEEDED")
                except PermissionError:
                    pass
        os.path.realpath = os.path.abspath = lambda path: os.getcwd()
        posix.lstat = lambda *a: None
        builtins.isinstance = lambda *a: False
        try:
            open(sys.argv[1], "w")
            print("write after monkeypatching SUCCEEDED")
        except PermissionError as exc:
            print("write after monkeypatching failed:", exc)
        """,
        str(target),
    )
    unharmed.append(result)
    assert result.ok, result.stderr
    assert "SUCCEEDED" not in result.stdout
    assert "guards 1" in result.stdout
    assert not target.exists()
    assert "subprocess.Popen /bin/true" in result.blocked and "os.system true" in result.blocked
    assert "os.exec /bin/true" in result.blocked and "os.posix_spawn /bin/true" in result.blocked
    assert "os.fork" in result.blocked and any(
        entry.startswith("_posixsubprocess.fork_exec") for entry in result.blocked
    )
    assert f"os.kill {os.getpid()} signal 0" in result.blocked
    assert "object.__setattr__ __code__ of the sandbox guard" in result.blocked


def test_the_guard_reads_no_global_names_and_holds_only_immutable_state() -> None:
    guard = _sandbox_boot._make_guard("/nonexistent", -1, "boot")
    functions = [guard, _sandbox_boot._decide, _sandbox_boot._describe, _sandbox_boot._check_path]
    functions += [_sandbox_boot._resolve, _sandbox_boot._text, _sandbox_boot._has_dotdot]
    immutable = (str, int, bool, type(None), frozenset, type, types.BuiltinFunctionType, types.FunctionType)
    for function in functions:
        assert function.__closure__ is None and not function.__kwdefaults__
        codes = [function.__code__]
        while codes:
            code = codes.pop()
            loads = {i.argval for i in dis.get_instructions(code) if i.opname in LOOKUPS}
            assert not loads, f"{function.__name__} looks up {loads} at call time"
            codes += [const for const in code.co_consts if isinstance(const, types.CodeType)]
        pending = list(function.__defaults__ or ())
        while pending:
            value = pending.pop()
            if isinstance(value, tuple):
                pending += value
            elif value is sys.modules:  # only decides whether a refused import is logged
                continue
            else:
                assert isinstance(value, immutable), f"{function.__name__} holds a mutable {type(value)}"
                assert not isinstance(value, dict)


# --- ordinary scripts ----------------------------------------------------------------------------------------------


def test_a_normal_script_runs_and_its_files_are_collected(unharmed: list[SandboxResult]) -> None:
    result = run_script(
        """
        import json, pathlib, tempfile
        pathlib.Path("out").mkdir()
        pathlib.Path("out/trace.json").write_text(json.dumps({"steps": [1, 2, 3]}))
        with tempfile.NamedTemporaryFile("w", delete=False) as handle:
            handle.write("scratch")
        print("done")
        """,
        collect=["out/trace.json", "missing.json"],
    )
    unharmed.append(result)
    assert result.ok and result.blocked == [], (result.stderr, result.blocked)
    assert result.stdout.endswith("done\n") and result.stderr == ""
    assert result.files == {"out/trace.json": '{"steps": [1, 2, 3]}'}


def test_pytest_runs_inside_the_sandbox() -> None:
    tests = """
        import numpy, pydantic, yaml

        def test_arithmetic():
            assert numpy.arange(4).sum() == 6

        def test_tmp_path(tmp_path):
            (tmp_path / "x.yaml").write_text(yaml.safe_dump({"a": 1}))
            assert yaml.safe_load((tmp_path / "x.yaml").read_text()) == {"a": 1}

        def test_failing():
            assert pydantic.VERSION == "0"
        """
    result = run_python(
        {"tests/test_sim.py": textwrap.dedent(tests)},
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 2 passed" in result.stdout
    assert result.blocked == []


def test_pydantic_numpy_and_pythonpath_imports_work(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    (lab / "wei").mkdir(parents=True)
    (lab / "wei" / "__init__.py").write_text("NAME = 'simulated'\n")
    (lab / "wei" / "data.txt").write_text("plate")
    script = """
        import pathlib, numpy, pydantic, wei

        class Step(pydantic.BaseModel):
            name: str
            volume: float

        print(Step(name="dispense", volume="2.5").volume, numpy.mean([1, 3]), wei.NAME)
        print((pathlib.Path(wei.__file__).parent / "data.txt").read_text())
        try:
            (pathlib.Path(wei.__file__).parent / "data.txt").write_text("changed")
        except PermissionError:
            print("pythonpath is read-only")
        """
    result = run_python({"main.py": textwrap.dedent(script)}, ["main.py"], pythonpath=[str(lab)])
    assert result.ok, result.stderr
    assert result.stdout == "2.5 2.0 simulated\nplate\npythonpath is read-only\n"
    assert (lab / "wei" / "data.txt").read_text() == "plate"


def test_output_is_truncated_with_a_marker() -> None:
    script = (
        "import sys\nprint('BEGIN' + 'x' * 100_000 + 'END')\nfor _ in range(200):\n    sys.stdout.write('y' * 10**5)\n"
    )
    result = run_python({"main.py": script}, ["main.py"], max_output=1000)
    assert result.ok
    assert result.stdout.startswith("BEGIN") and result.stdout.endswith("y" * 100)
    assert "output truncated" in result.stdout and len(result.stdout) < 1000 + 200
    short = run_python({"main.py": "print('BEGIN' + 'x' * 3000 + 'END')"}, ["main.py"], max_output=1000)
    assert short.stdout.startswith("BEGIN") and short.stdout.endswith("END\n") and "output truncated" in short.stdout


def test_sandbox_available_reports_the_layers() -> None:
    layers = sandbox_available()
    assert set(layers) == {"netns", "audit_hook", "rlimits"}
    assert all(isinstance(active, bool) for active in layers.values())
    assert layers["audit_hook"] and layers["rlimits"]
    assert layers["netns"] == (sandbox._netns_prefix() is not None)


def test_bad_arguments_are_refused_before_anything_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for files, argv in (({"../x.py": ""}, ["x.py"]), ({"/abs.py": ""}, ["abs.py"]), ({}, []), ({}, ["-X", "dev"])):
        with pytest.raises(ValueError):
            run_python(files, argv)
    with pytest.raises(ValueError):
        run_python({}, ["-c", "pass"], collect=["../../etc/passwd"])
    assert list(tmp_path.iterdir()) == []


def test_the_temp_dir_is_removed_when_starting_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("cannot start")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    with pytest.raises(OSError, match="cannot start"):
        run_python({"main.py": "print(1)"}, ["main.py"])
    assert list(tmp_path.iterdir()) == []


def test_minus_c_and_exit_codes() -> None:
    result = run_python({}, ["-c", "import sys; print(sys.argv[1:]); sys.exit(3)", "a", "b"])
    assert result.returncode == 3 and result.stdout == "['a', 'b']\n" and not result.ok


def test_concurrent_runs_stay_apart() -> None:
    def run(index: int) -> SandboxResult:
        script = "import pathlib, sys\npathlib.Path('out.txt').write_text(sys.argv[1])\nprint(sys.argv[1])\n"
        return run_python({"main.py": script}, ["main.py", str(index)], collect=["out.txt"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(run, range(12)))
    for index, result in enumerate(results):
        assert result.ok and result.stdout == f"{index}\n" and result.files == {"out.txt": str(index)}
