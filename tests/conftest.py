"""Suite-wide guards: no test may reach the network beyond this machine's loopback interface.

Tests talk only to servers they start on 127.0.0.1 (scripted model server, PostgreSQL, local HTTP); a connection or
a name lookup for anything else fails the test that made it, so an accidental call to a real provider cannot pass.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

LOOPBACK = {"127.0.0.1", "::1", "localhost", "0.0.0.0", "::"}


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse every non-loopback connection and name lookup made in the test process."""
    outside: list[str] = []
    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and str(address[0]) not in LOOPBACK:
            outside.append(str(address))
            raise ConnectionRefusedError(f"test guard: no connections outside loopback ({address})")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: Any, *rest: Any, **kw: Any) -> Any:
        if host is not None and str(host) not in LOOPBACK:
            outside.append(f"resolve {host}")
            raise socket.gaierror(f"test guard: no name lookups ({host})")
        return real_getaddrinfo(host, *rest, **kw)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    assert outside == [], f"the test tried to reach beyond loopback: {outside}"
