"""The exception the real client raises for a refused HTTP request (``requests.exceptions.HTTPError``).

The simulated ``wei`` does not import ``requests`` itself (urllib3 probes IPv6 by binding a socket on import, which a
sandbox refuses): when the script has imported ``requests``, its ``HTTPError`` is raised, so ``except
requests.exceptions.HTTPError`` works; otherwise a stand-in that is, like it, an ``OSError``.
"""

from __future__ import annotations

import sys


class HTTPError(OSError):
    """Stand-in for ``requests.exceptions.HTTPError`` (a subclass of ``OSError``) when ``requests`` is not loaded."""


REASONS = {400: "Bad Request", 404: "Not Found", 422: "Unprocessable Entity", 500: "Internal Server Error"}


def http_error(status_code: int, url: str, detail: str) -> Exception:
    """An HTTPError worded like ``requests``' own, with the simulated server's detail appended."""
    side = "Client" if status_code < 500 else "Server"
    message = f"{status_code} {side} Error: {REASONS.get(status_code, 'Error')} for url: {url} ({detail})"
    loaded = sys.modules.get("requests.exceptions")
    error_type = getattr(loaded, "HTTPError", None) if loaded is not None else None
    if isinstance(error_type, type) and issubclass(error_type, Exception):
        return error_type(message)
    return HTTPError(message)
