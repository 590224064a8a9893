"""Input URLs are fetched only from public addresses (or allow-listed ones), with checked redirects and limits."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from carml.settings import load_settings
from carml.url_inputs import UrlRefused, fetch_input_url

PNG = io.BytesIO()
Image.new("L", (8, 8), 128).save(PNG, format="PNG")


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {
        "/digit.png": (200, {"Content-Type": "image/png"}, PNG.getvalue()),
        "/page.html": (200, {"Content-Type": "text/html"}, b"<html></html>"),
        "/big.png": (200, {"Content-Type": "image/png"}, b"x" * 5000),
        "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/to-digit": (302, {"Location": "/digit.png"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
    }

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def settings():
    return load_settings({"CARML_HTTP_TIMEOUT_S": "5"})


@pytest.mark.parametrize(
    "url,words",
    [
        ("http://127.0.0.1/x.png", "loopback"),
        ("http://localhost/x.png", "loopback"),
        ("http://[::1]/x.png", "loopback"),
        ("http://[::ffff:127.0.0.1]/x.png", "loopback"),
        ("http://10.1.2.3/x.png", "private"),
        ("http://192.168.0.1/x.png", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0.0.0.0/x.png", "unspecified"),
        ("http://224.0.0.1/x.png", "multicast"),
        ("http://[fe80::1]/x.png", "link-local"),
        ("ftp://example.org/x.png", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http:///nohost.png", "only http and https"),
        ("http://no-such-host.invalid/x.png", "cannot resolve"),
    ],
)
def test_internal_and_odd_urls_are_refused_before_connecting(settings, url: str, words: str) -> None:
    with pytest.raises(UrlRefused, match=words):
        fetch_input_url(url, settings, max_bytes=10_000)


def test_an_allow_listed_server_is_fetched_with_checks(settings, server: str) -> None:
    allowed = replace(settings, url_allowlist=("127.0.0.1/32",))
    assert fetch_input_url(f"{server}/digit.png", allowed, 10_000) == ("digit.png", PNG.getvalue())
    assert fetch_input_url(f"{server}/to-digit", allowed, 10_000)[1] == PNG.getvalue()
    with pytest.raises(UrlRefused, match="text/html, not an image or audio file"):
        fetch_input_url(f"{server}/page.html", allowed, 10_000)
    with pytest.raises(UrlRefused, match="5000 bytes; at most 1000"):
        fetch_input_url(f"{server}/big.png", allowed, 1000)
    with pytest.raises(UrlRefused, match="HTTP 404"):
        fetch_input_url(f"{server}/missing.png", allowed, 10_000)
    with pytest.raises(UrlRefused, match="redirects more than 5 times"):
        fetch_input_url(f"{server}/loop", allowed, 10_000)


def test_every_redirect_is_checked_again(settings, server: str) -> None:
    allowed = replace(settings, url_allowlist=("127.0.0.1",))
    with pytest.raises(UrlRefused, match="169.254.169.254, a link-local address"):
        fetch_input_url(f"{server}/to-metadata", allowed, 10_000)


def test_without_the_allow_list_the_loopback_server_is_refused(settings, server: str) -> None:
    with pytest.raises(UrlRefused, match="loopback"):
        fetch_input_url(f"{server}/digit.png", settings, 10_000)
