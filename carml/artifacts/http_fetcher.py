"""Built-in fetcher for http:// and https:// artifacts, with the standard library only."""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator

from carml.errors import ArtifactError
from carml.settings import Settings

_CHUNK = 1024 * 1024


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """System CAs plus `settings.ca_bundle`: a private CA is added to, not swapped for, the public ones."""
    context = ssl.create_default_context()
    if settings.ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=str(settings.ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise ArtifactError(
                f"The CA bundle {settings.ca_bundle} (CARML_CA_BUNDLE) could not be loaded as PEM certificates: {exc}."
            ) from None
    return context


def _open_error(url: str, exc: Exception) -> ArtifactError:
    if isinstance(exc, urllib.error.HTTPError):
        exc.close()  # an HTTPError holds the error response and its socket open
        return ArtifactError(f"Could not download {url}: the server answered HTTP {exc.code} {exc.reason}.")
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ssl.SSLCertVerificationError):
        return ArtifactError(
            f"Could not download {url}: the server's TLS certificate could not be verified "
            f"({reason.verify_message}). If the server uses a private CA, set CARML_CA_BUNDLE to that "
            f"CA's certificate (PEM)."
        )
    if isinstance(reason, TimeoutError):
        return ArtifactError(f"Could not download {url}: the server did not answer in time.")
    if isinstance(reason, OSError) and reason.strerror:
        reason = reason.strerror  # "Connection refused", without the errno prefix
    return ArtifactError(f"Could not download {url}: {reason}.")


def fetch_http(url: str, settings: Settings) -> Iterator[bytes]:
    """Stream the body of `url`; the timeout bounds the connect and every read, not the whole download."""
    request = urllib.request.Request(url, headers={"User-Agent": "carml"})
    # Always pass the context: an http URL may redirect to https, which must trust the same CAs.
    context = ssl_context(settings)
    try:
        response = urllib.request.urlopen(request, timeout=settings.http_timeout_s, context=context)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _open_error(url, exc) from None
    with response:
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > settings.artifact_max_bytes:
            raise ArtifactError(
                f"Refusing to download {url}: it is {int(length)} bytes, more than the limit of "
                f"{settings.artifact_max_bytes} bytes (raise CARML_ARTIFACT_MAX_BYTES if it is meant to be)."
            )
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                reason = str(exc) or type(exc).__name__
                raise ArtifactError(f"The download of {url} broke off: {reason}.") from None
            if not chunk:
                return
            yield chunk
