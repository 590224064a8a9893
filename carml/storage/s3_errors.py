"""Classify minio/urllib3 failures: which are worth retrying, and what to tell people about each."""

from __future__ import annotations

from carml.storage.errors import ObjectNotFound, StorageError

_RETRY_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}
_CREDENTIAL_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
_CREDENTIALS_HINT = "check CARML_S3_ACCESS_KEY and CARML_S3_SECRET_KEY"


def _status(exc: Exception) -> int | None:
    from minio.error import InvalidResponseError, S3Error, ServerError

    if isinstance(exc, S3Error):
        return exc.response.status
    if isinstance(exc, ServerError):
        return exc.status_code
    if isinstance(exc, InvalidResponseError):
        return getattr(exc, "_code", None)
    return None


def is_retryable(exc: Exception) -> bool:
    """Connection trouble and server-side (5xx) errors may pass; a 4xx answer will not change."""
    from minio.error import S3Error
    from urllib3.exceptions import HTTPError

    if isinstance(exc, HTTPError):
        return True
    if isinstance(exc, S3Error) and exc.code in _RETRY_CODES:
        return True
    status = _status(exc)
    return status is not None and status >= 500


def root_cause(exc: BaseException) -> str:
    """The innermost reason: urllib3 wraps 'Connection refused' in layers of pool and retry details."""
    while True:
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = exc.__cause__
        if inner is None:
            break
        exc = inner
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def storage_error(exc: Exception, *, action: str, key: str, store: str, endpoint: str, attempts: int) -> StorageError:
    """A one-line `StorageError` for `exc`; messages name the endpoint and key, never credentials."""
    from minio.error import S3Error
    from urllib3.exceptions import HTTPError

    what = f"Could not {action} '{key}' in {store}"
    tries = f" after {attempts} attempts" if attempts > 1 and is_retryable(exc) else ""
    if isinstance(exc, S3Error):
        if exc.code == "NoSuchKey":
            return ObjectNotFound(f"The store {store} has no object '{key}'.")
        if exc.code in _CREDENTIAL_CODES:
            return StorageError(f"{what}: the S3 endpoint {endpoint} denied access ({exc.code}); {_CREDENTIALS_HINT}.")
        return StorageError(f"{what}: the S3 endpoint {endpoint} answered {exc.code}{tries}: {exc.message}.")
    if isinstance(exc, HTTPError):
        return StorageError(
            f"{what}: the S3 endpoint {endpoint} could not be reached{tries} ({root_cause(exc)}); "
            f"check CARML_S3_ENDPOINT and CARML_S3_SECURE."
        )
    status = _status(exc)
    if status in (401, 403):  # some servers refuse an unsigned request with a bare HTML page
        return StorageError(f"{what}: the S3 endpoint {endpoint} denied access (HTTP {status}); {_CREDENTIALS_HINT}.")
    if status is not None:
        return StorageError(f"{what}: the S3 endpoint {endpoint} answered HTTP {status}{tries}.")
    return StorageError(f"{what}: {exc}.")
