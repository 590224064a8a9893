"""Fetch a user's input from a URL without letting the URL reach inside our network (SSRF).

Only http and https; every host, including each redirect's, is resolved and refused unless all its
addresses are public (loopback, private, link-local, multicast, reserved and IPv4-mapped forms of them
are refused) or allow-listed by CARML_URL_ALLOWLIST. The connection goes to the address that was
checked, so a second DNS answer cannot point it elsewhere. Timeouts, a size cap and the content type
bound what comes back.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
from pathlib import PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

from carml.errors import CarmlError
from carml.settings import Settings

MAX_REDIRECTS = 5
ACCEPTED_TYPES = ("image/", "audio/")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(CarmlError):
    """An input URL that will not be fetched, or whose answer is not acceptable; the message says why."""


def _allowed(settings: Settings, host: str, ip: IPAddress) -> bool:
    for entry in settings.url_allowlist:
        if entry.lower() == host.lower():
            return True
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name entry, checked above
    return False


def _why_not_public(ip: IPAddress) -> str | None:
    # Most specific first: link-local and unspecified addresses also count as private.
    for label, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ):
        if flag:
            return label
    return None if ip.is_global else "non-public"


def vetted_address(settings: Settings, host: str, port: int) -> str:
    """The address to connect to for `host`, after checking every address it resolves to."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(f"cannot resolve the host {host!r}: {exc}") from None
    addresses = []
    for *_, sockaddr in answers:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        why = _why_not_public(ip)
        if why and not _allowed(settings, host, ip):
            article = "an" if why[0] in "aeiou" else "a"
            raise UrlRefused(f"{host} resolves to {ip}, {article} {why} address; only public addresses are fetched")
        addresses.append(str(ip))
    if not addresses:
        raise UrlRefused(f"the host {host!r} has no address")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address while naming the host in the request."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the checked address, verifying the certificate against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: object):
        super().__init__(host, port, timeout=timeout, context=context)  # type: ignore[arg-type]
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _connection(settings: Settings, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
    address = vetted_address(settings, host, port)
    if scheme == "http":
        return _PinnedHTTPConnection(host, port, address, settings.http_timeout_s)
    from carml.artifacts.http_fetcher import ssl_context

    return _PinnedHTTPSConnection(host, port, address, settings.http_timeout_s, ssl_context(settings))


def fetch_input_url(url: str, settings: Settings, max_bytes: int) -> tuple[str, bytes]:
    """(file name, content) of an image or audio file at `url`, following at most 5 checked redirects."""
    current = url.strip()
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UrlRefused(f"only http and https URLs with a host are fetched, not {current[:100]!r}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise UrlRefused(f"{current[:100]!r} has an invalid port") from None
        connection = _connection(settings, parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("GET", target, headers={"User-Agent": "CarML", "Accept": "image/*, audio/*"})
            response = connection.getresponse()
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                current = urljoin(current, response.getheader("Location") or "")
                continue
            if response.status != 200:
                raise UrlRefused(f"{current[:100]} answered HTTP {response.status}")
            content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
            if not content_type.startswith(ACCEPTED_TYPES):
                raise UrlRefused(
                    f"{current[:100]} is {content_type or 'of no stated type'}, not an image or audio file"
                )
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise UrlRefused(f"{current[:100]} is {int(declared)} bytes; at most {max_bytes} are fetched")
            data = response.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise UrlRefused(f"{current[:100]} is larger than {max_bytes} bytes")
        except (OSError, http.client.HTTPException) as exc:
            raise UrlRefused(f"cannot fetch {current[:100]}: {exc}") from None
        finally:
            connection.close()
        name = PurePosixPath(unquote(parts.path)).name or "input"
        return name, data
    raise UrlRefused(f"{url[:100]} redirects more than {MAX_REDIRECTS} times")
