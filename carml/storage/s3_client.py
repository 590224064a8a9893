"""Build a minio client for the configured S3/MinIO endpoint, honouring the CA bundle and timeouts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carml.settings import Settings

if TYPE_CHECKING:
    from minio import Minio


def build_minio(settings: Settings, *, http_retries: int = 3) -> Minio:
    """The client for S3 artifacts and the S3 object store; `http_retries=0` leaves retrying to the caller."""
    # Imported here: the minio SDK (and urllib3) is only needed once S3 is actually used.
    import minio
    import urllib3

    from carml.artifacts.http_fetcher import ssl_context

    # Our own pool so S3 honours the same timeout and CA bundle as https downloads.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=settings.http_timeout_s, read=settings.http_timeout_s),
        ssl_context=ssl_context(settings) if settings.s3_secure else None,
        retries=urllib3.Retry(
            total=http_retries,
            backoff_factor=0.2,
            # With no retries a 5xx must reach the caller as an answer, not as urllib3's "too many errors".
            status_forcelist=[500, 502, 503, 504] if http_retries else None,
        ),
    )
    return minio.Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=settings.s3_secure,
        region=settings.s3_region,
        http_client=http,
    )
