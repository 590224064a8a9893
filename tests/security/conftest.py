"""Fixtures of the hostile-input tests: the API tests' app, settings and client from tests/webapp/conftest.py (so
requests are made as whatever caller those fixtures authenticate), with upload caps small enough to reach in a
test, a private temporary folder, an allow-listed web server on a loopback address, and a snapshot of everything
a request could have written."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask
from security.hostile_files import png, png_bomb
from sqlalchemy import func, select
from support import webapp_conftest

from carml.db.base import Base
from carml.db.session import session_scope
from carml.settings import Settings
from webapp.context import SETTINGS_KEY

# Every public name of the API tests' conftest, fixtures included: `client` keeps whatever fixtures it needs
# (an account, a token) as that file defines them.
globals().update(
    {
        name: value
        for name, value in vars(webapp_conftest("security")).items()
        if not name.startswith("_") and name not in globals()
    }
)

# The allow-listed web server listens on this loopback address; 127.0.0.1 itself stays forbidden.
ALLOWED_HOST = "127.0.0.2"
UPLOAD_MAX_MEMBERS = 50
MAX_REQUEST_BYTES = 2 * 1024**2


@dataclass(frozen=True)
class Written:
    """Rows per table, and every file under the test's folder (home, cache, object store, temporary files)."""

    rows: dict[str, int]
    files: frozenset[str]


def everything_written(settings: Settings, root: Path) -> Written:
    with session_scope(settings.database) as session:
        rows = {t.name: session.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}
    # Folders too: a temporary folder left behind is something written. The SQLite database files change with
    # every query; what a request wrote to them is in `rows`.
    files = frozenset(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.name.startswith("carml.db"))
    return Written(rows, files)


@pytest.fixture()
def hostile_settings(app: Flask, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app's settings with a member cap small enough to pass in a test (the byte caps keep their defaults),
    the loopback test server allow-listed, a 2 MiB request limit, and temporary files under the test's folder."""
    tight = replace(settings, upload_max_members=UPLOAD_MAX_MEMBERS, url_allowlist=(ALLOWED_HOST,), http_timeout_s=5)
    app.extensions[SETTINGS_KEY] = tight
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return tight


class _Handler(BaseHTTPRequestHandler):
    """Serves images, a page, a huge declared body and redirects to forbidden places."""

    def _routes(self) -> dict[str, tuple[int, dict[str, str], bytes]]:
        loopback = f"http://127.0.0.1:{self.server.server_address[1]}/digit.png"
        return {
            "/digit.png": (200, {"Content-Type": "image/png"}, png()),
            "/bomb.png": (200, {"Content-Type": "image/png"}, png_bomb(10_000, 10_000)),
            "/page.html": (200, {"Content-Type": "text/html"}, b"<html>not an image</html>"),
            "/huge.png": (200, {"Content-Type": "image/png", "Content-Length": str(100 * 2**20)}, b""),
            "/to-loopback": (302, {"Location": loopback}, b""),
            "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
            "/to-mapped": (302, {"Location": "http://[::ffff:10.0.0.1]/x.png"}, b""),
            "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
        }

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        status, headers, body = self._routes().get(self.path, (404, {}, b""))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def allowed_server() -> Iterator[str]:
    """The base URL of a web server on 127.0.0.2, which `hostile_settings` allow-lists."""
    httpd = ThreadingHTTPServer((ALLOWED_HOST, 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://{ALLOWED_HOST}:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
