"""The suite-wide network guard (tests/conftest.py) itself: outside connections and lookups fail, loopback works.

The guard is exercised in an inner pytest run (pytester) with a copy of our conftest, because a test that trips it
is *supposed* to fail, even when it catches the error itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

INNER = """
import socket
import threading

import httpx


def test_outside_address_caught_by_the_test():
    try:
        socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1, never routable
    except OSError as exc:
        assert "test guard" in str(exc)


def test_outside_name_lookup():
    try:
        httpx.get("https://api.openai.com/v1/models", timeout=1)
    except httpx.HTTPError:
        pass


def test_loopback_server_works():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        conn.sendall(b"hi")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        assert client.recv(2) == b"hi"
    server.close()
"""


def test_the_guard_fails_outside_connections_even_when_caught_and_allows_loopback(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 3, result.stdout.str()
    assert outcomes.get("errors") == 2, result.stdout.str()  # the two outside attempts fail at teardown
    out = result.stdout.str()
    assert "192.0.2.1" in out and "resolve api.openai.com" in out
    result.assert_outcomes(passed=3, errors=2)
