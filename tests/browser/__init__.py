"""Browser tests of the web page: Playwright driving Debian chromium against the real server."""
