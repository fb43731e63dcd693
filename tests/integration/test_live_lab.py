"""``lab_from_live`` and ``wei-gen validate --live`` against real local HTTP modules, good and broken.

One stdlib ``ThreadingHTTPServer`` on 127.0.0.1 serves ``/about`` for several fake modules on distinct path prefixes:
a good about, a 404 ``{"detail": "Not Found"}``, a non-JSON page, a legacy ``{"About": ...}`` and one that answers
only after the client's timeout. A further module points at a port that is bound but not listening (connection
refused). The server is shut down at the end of the module; the whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_cli as support_run_cli
from wei_gen.lab import Lab, lab_from_live
from wei_gen.tools.validator import validate_text

pytestmark = pytest.mark.integration

TIMEOUT = 0.5
"""Client timeout passed to ``lab_from_live``."""
SLOW_SECONDS = 3.0
"""How long the slow module waits before answering (cut short when the server shuts down)."""
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

GOOD_ABOUT: dict[str, Any] = {
    "name": "reader_node",
    "model": "Absorbance plate reader",
    "interface": "wei_rest_node",
    "version": "1.0.0",
    "wei_version": "0.7.4",
    "description": "A fake plate reader served by the test.",
    "actions": [
        {"name": "open_tray", "args": [], "files": [], "results": []},
        {
            "name": "read_plate",
            "args": [{"name": "wavelength", "type": "int", "default": None, "required": True}],
            "files": [],
            "results": [{"label": "absorbance", "type": "local_file"}],
        },
    ],
    "resource_pools": [],
    "admin_commands": [],
}
LEGACY_ABOUT = {"About": {"name": "liconic", "type": "liconic_node", "actions": {"load_plate": "stacker, slot"}}}


class FakeModules(BaseHTTPRequestHandler):
    """Answers ``GET /<module>/about`` the way a good or a broken module would."""

    stop: threading.Event  # set on the server's handler class by the fixture

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        prefix, _, rest = self.path.strip("/").partition("/")
        if rest != "about":
            self.reply(404, b'{"detail":"Not Found"}')
        elif prefix == "good":
            self.reply(200, json.dumps(GOOD_ABOUT).encode())
        elif prefix == "missing":
            self.reply(404, b'{"detail":"Not Found"}')
        elif prefix == "text":
            self.reply(200, b"<html><body>module console</body></html>", content_type="text/html")
        elif prefix == "legacy":
            self.reply(200, json.dumps(LEGACY_ABOUT).encode())
        elif prefix == "slow":
            self.stop.wait(SLOW_SECONDS)
            self.reply(200, json.dumps(GOOD_ABOUT).encode())
        else:
            self.reply(404, b'{"detail":"Not Found"}')

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the slow module); nothing to tell it

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        """Keep the test output quiet."""


@dataclass
class LiveLab:
    """The running fake modules and the workcells that point at them."""

    base: str
    closed_port: int
    workcell: Path
    cli_workcell: Path
    tmp: Path


def workcell_yaml(name: str, addresses: dict[str, str | None], *, inactive: tuple[str, ...] = ()) -> str:
    """A workcell whose modules point at ``addresses`` (``None``: a module with no REST address)."""
    lines = [f"name: {name}", "config: {}", "modules:"]
    for module, address in addresses.items():
        lines += [f"  - name: {module}", "    model: fake"]
        if address is None:
            lines.append("    interface: simulate_callback")
        else:
            lines += ["    interface: wei_rest_node", "    config:", f'      rest_node_address: "{address}"']
        if module in inactive:
            lines.append("    active: false")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveLab]:
    tmp = tmp_path_factory.mktemp("live_lab")
    stop = threading.Event()
    handler = type("Handler", (FakeModules,), {"stop": stop})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # bound, never listening: connection refused
    closed.bind(("127.0.0.1", 0))
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        closed_port = closed.getsockname()[1]
        addresses: dict[str, str | None] = {
            "reader": f"{base}/good",
            "barty": f"{base}/missing/",  # trailing slash: the loader must not ask for //about
            "console": f"{base}/text",
            "liconic": f"{base}/legacy",
            "sleepy": f"{base}/slow",
            "ghost": f"http://127.0.0.1:{closed_port}",
            "sim": None,
            "spare": f"{base}/good",
        }
        workcell = tmp / "workcell.yaml"
        workcell.write_text(workcell_yaml("live_test_workcell", addresses, inactive=("spare",)), encoding="utf-8")
        # The CLI has no timeout option (it waits 5 s per module), so its workcell leaves the slow module out.
        cli_addresses = {k: v for k, v in addresses.items() if k != "sleepy"}
        cli_workcell = tmp / "cli_workcell.yaml"
        cli_workcell.write_text(
            workcell_yaml("live_cli_workcell", cli_addresses, inactive=("spare",)), encoding="utf-8"
        )
        yield LiveLab(base, closed_port, workcell, cli_workcell, tmp)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)
        closed.close()
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def lab(live: LiveLab) -> Iterator[Lab]:
    with pytest.MonkeyPatch.context() as mp:
        for var in PROXY_VARS:  # the fake modules are on 127.0.0.1; never ask a proxy
            mp.delenv(var, raising=False)
        started = time.perf_counter()
        loaded = lab_from_live(live.workcell, timeout=TIMEOUT)
        loaded_in = time.perf_counter() - started
    assert loaded_in < TIMEOUT + 1.5, f"lab_from_live took {loaded_in:.2f} s with timeout {TIMEOUT} s"
    yield loaded


def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI without proxy settings (the modules are on loopback)."""
    return support_run_cli(*args, cwd=cwd, timeout=30, drop=PROXY_VARS)


WORKFLOW = """\
name: Live lab check
metadata:
  author: tests
flowdef:
  - name: Open the tray
    module: reader
    action: open_tray
  - name: Read the plate
    module: reader
    action: read_plate
    args:
      wavelength: 600
{extra}"""

FAILED_MODULE_STEPS = """\
  - name: Ask barty
    module: barty
    action: refill
  - name: Ask barty again
    module: barty
    action: drain
"""

UNKNOWN_ACTION_STEP = """\
  - name: Dance
    module: reader
    action: dance
"""


# ---------------------------------------------------------------------------------------------------------------------
# lab_from_live
# ---------------------------------------------------------------------------------------------------------------------


def test_good_module_is_ok(lab: Lab) -> None:
    reader = lab.modules["reader"]
    assert (reader.about_status, reader.about_problem) == ("ok", "")
    assert reader.about is not None
    assert reader.about.name == "reader_node"
    assert [a.name for a in reader.about.actions] == ["open_tray", "read_plate"]
    assert lab.action("reader", "read_plate") is not None
    assert lab.source.startswith("live:")


@pytest.mark.parametrize(
    ("module", "words"),
    [
        pytest.param("barty", ("404",), id="404"),
        pytest.param("console", ("JSON",), id="not-json"),
        pytest.param("liconic", ("legacy",), id="legacy-about"),
        pytest.param("sleepy", ("timed out",), id="timeout"),
        pytest.param("ghost", ("connect",), id="closed-port"),
    ],
)
def test_broken_modules_fail_with_a_reason(lab: Lab, live: LiveLab, module: str, words: tuple[str, ...]) -> None:
    mod = lab.modules[module]
    assert mod.about is None
    assert mod.about_status == "failed", mod.about_problem
    for word in words:
        assert word.lower() in mod.about_problem.lower(), mod.about_problem
    assert "/about" in mod.about_problem  # the reason names the URL that was asked


def test_trailing_slash_in_address_is_not_doubled(lab: Lab) -> None:
    assert "/missing/about" in lab.modules["barty"].about_problem
    assert "//about" not in lab.modules["barty"].about_problem


def test_closed_port_reason_names_the_port(lab: Lab, live: LiveLab) -> None:
    assert f":{live.closed_port}/about" in lab.modules["ghost"].about_problem


def test_modules_without_address_or_inactive_are_missing_not_failed(lab: Lab) -> None:
    assert lab.modules["sim"].about_status == "missing"
    assert "rest_node_address" in lab.modules["sim"].about_problem
    assert lab.modules["spare"].about_status == "missing"
    assert "inactive" in lab.modules["spare"].about_problem


def test_failed_module_is_a_warning_not_an_error(lab: Lab) -> None:
    report = validate_text(WORKFLOW.format(extra=FAILED_MODULE_STEPS), lab, source="failed_module.yaml")
    assert report.ok, [d.model_dump() for d in report.errors]
    unavailable = [d for d in report.diagnostics if d.code == "about-unavailable"]
    assert len(unavailable) == 1  # said once per module, not once per step
    (warning,) = unavailable
    assert warning.severity == "warning"
    assert warning.step_index == 2
    assert "barty" in warning.message
    assert "404" in warning.message  # the reason travels into the diagnostic


@pytest.mark.parametrize("module", ["console", "liconic", "sleepy", "ghost"])
def test_every_failed_module_only_warns(lab: Lab, module: str) -> None:
    steps = f"  - name: Use {module}\n    module: {module}\n    action: anything\n"
    report = validate_text(WORKFLOW.format(extra=steps), lab)
    assert report.ok
    assert report.codes("warning") == ["about-unavailable"]


def test_unknown_action_on_good_module_is_still_an_error(lab: Lab) -> None:
    report = validate_text(WORKFLOW.format(extra=FAILED_MODULE_STEPS + UNKNOWN_ACTION_STEP), lab)
    assert not report.ok
    assert report.codes("error") == ["unknown-action"]
    assert report.errors[0].step_index == 4
    assert "about-unavailable" in report.codes("warning")


def test_missing_required_arg_on_good_module_is_still_an_error(lab: Lab) -> None:
    text = WORKFLOW.format(extra="").replace("    args:\n      wavelength: 600\n", "")
    report = validate_text(text, lab)
    assert report.codes("error") == ["missing-required-arg"]


def test_clean_workflow_on_live_lab(lab: Lab) -> None:
    report = validate_text(WORKFLOW.format(extra=""), lab)
    assert report.diagnostics == []


# ---------------------------------------------------------------------------------------------------------------------
# wei-gen validate --workcell W --live (subprocess)
# ---------------------------------------------------------------------------------------------------------------------


def test_cli_live_unknown_action_exits_1_with_warnings(live: LiveLab) -> None:
    path = live.tmp / "live_unknown_action.yaml"
    path.write_text(WORKFLOW.format(extra=FAILED_MODULE_STEPS + UNKNOWN_ACTION_STEP), encoding="utf-8")
    result = run_cli("validate", path, "--workcell", live.cli_workcell, "--live", "--format", "json", cwd=live.tmp)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    assert payload["lab"]["source"] == f"live:{live.cli_workcell}"
    diagnostics = payload["files"][0]["diagnostics"]
    by_code = {d["code"]: d["severity"] for d in diagnostics}
    assert by_code == {"about-unavailable": "warning", "unknown-action": "error"}
    assert payload["summary"] == {"files": 1, "failed": 1, "errors": 1, "warnings": 1}


def test_cli_live_failed_module_only_warns(live: LiveLab) -> None:
    path = live.tmp / "live_failed_module.yaml"
    path.write_text(WORKFLOW.format(extra=FAILED_MODULE_STEPS), encoding="utf-8")
    result = run_cli("validate", path, "--workcell", live.cli_workcell, "--live", cwd=live.tmp)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 1 warning(s)" in result.stdout
    assert "[about-unavailable]" in result.stdout
    assert "HTTP 404" in result.stdout


def test_cli_lab_live_lists_unknown_modules(live: LiveLab) -> None:
    result = run_cli("lab", "--workcell", live.cli_workcell, "--live", "--format", "json", cwd=live.tmp)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    unknown = payload["unknown_modules"]
    assert set(unknown) == {"barty", "console", "liconic", "ghost", "sim", "spare"}
    assert "404" in unknown["barty"]
    assert "JSON" in unknown["console"]
    assert "connect" in unknown["ghost"].lower()
    assert "read_plate(wavelength: int*)" in payload["cards"]


# ---------------------------------------------------------------------------------------------------------------------
# Known bug (src/wei_gen/lab.py::_fetch_about): httpx.InvalidURL is not an httpx.HTTPError, so it escapes
# ---------------------------------------------------------------------------------------------------------------------


def test_invalid_address_is_a_failed_module_not_a_crash(tmp_path: Path) -> None:
    workcell = tmp_path / "workcell.yaml"
    workcell.write_text(workcell_yaml("bad_address", {"typo": "http://127.0.0.1:20O0"}), encoding="utf-8")
    lab = lab_from_live(workcell, timeout=TIMEOUT)
    assert lab.modules["typo"].about_status == "failed"
