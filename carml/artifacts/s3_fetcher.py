"""Built-in fetcher for s3://bucket/key artifacts, read from the configured S3/MinIO endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from carml.errors import ArtifactError
from carml.settings import Settings
from carml.storage.s3_errors import root_cause

if TYPE_CHECKING:
    from minio import Minio

_CHUNK = 1024 * 1024
_CREDENTIAL_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}


def _client(settings: Settings) -> Minio:
    from carml.storage.s3_client import build_minio

    return build_minio(settings)


def _credentials_hint(settings: Settings) -> str:
    if settings.s3_access_key is None or settings.s3_secret_key is None:
        return "no credentials are configured: set CARML_S3_ACCESS_KEY and CARML_S3_SECRET_KEY"
    return "check CARML_S3_ACCESS_KEY and CARML_S3_SECRET_KEY"


def _error(url: str, bucket: str, key: str, exc: Exception, settings: Settings) -> ArtifactError:
    from minio.error import InvalidResponseError, S3Error
    from urllib3.exceptions import HTTPError

    where = f"the S3 endpoint {settings.s3_endpoint}"
    if isinstance(exc, S3Error):
        if exc.code == "NoSuchBucket":
            return ArtifactError(f"Could not fetch {url}: the bucket '{bucket}' does not exist at {where}.")
        if exc.code == "NoSuchKey":
            return ArtifactError(f"Could not fetch {url}: the bucket '{bucket}' has no object '{key}'.")
        if exc.code in _CREDENTIAL_CODES:
            hint = _credentials_hint(settings)
            return ArtifactError(f"Could not fetch {url}: {where} denied access ({exc.code}); {hint}.")
        return ArtifactError(f"Could not fetch {url}: {where} answered {exc.code}: {exc.message}.")
    if isinstance(exc, InvalidResponseError):
        # Some servers answer a refused, unsigned request with a bare HTML 401/403 page.
        status = getattr(exc, "_code", None)
        if status in (401, 403):
            hint = _credentials_hint(settings)
            return ArtifactError(f"Could not fetch {url}: {where} denied access (HTTP {status}); {hint}.")
        return ArtifactError(f"Could not fetch {url}: {where} sent an unexpected answer (HTTP {status}).")
    if isinstance(exc, HTTPError | OSError):
        return ArtifactError(
            f"Could not fetch {url}: {where} could not be reached ({root_cause(exc)}); check "
            f"CARML_S3_ENDPOINT and CARML_S3_SECURE."
        )
    return ArtifactError(f"Could not fetch {url}: {exc}.")


def fetch_s3(url: str, settings: Settings) -> Iterator[bytes]:
    """Stream the object named by `url` (s3://bucket/key) from `settings.s3_endpoint`."""
    from minio.error import MinioException
    from urllib3.exceptions import HTTPError

    parts = urlsplit(url)
    bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
    if not bucket or not key:
        raise ArtifactError(f"The artifact URL {url} is not of the form s3://bucket/key.")
    failures = (MinioException, HTTPError, OSError, ValueError)
    try:
        response = _client(settings).get_object(bucket, key)
    except ValueError as exc:  # the SDK validates bucket and key names before sending anything
        raise ArtifactError(f"Could not fetch {url}: {exc}.") from None
    except failures as exc:
        raise _error(url, bucket, key, exc, settings) from None
    try:
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > settings.artifact_max_bytes:
            raise ArtifactError(
                f"Refusing to download {url}: it is {int(length)} bytes, more than the limit of "
                f"{settings.artifact_max_bytes} bytes (raise CARML_ARTIFACT_MAX_BYTES if it is meant to be)."
            )
        try:
            yield from response.stream(_CHUNK)
        except failures as exc:
            raise ArtifactError(f"The download of {url} broke off: {exc}.") from None
    finally:
        response.close()
        response.release_conn()
