"""The object store for per-item outputs, uploaded datasets and cached artifacts: a local folder or S3."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from carml.settings import Settings
from carml.storage.base import DEFAULT_CONTENT_TYPE, ObjectInfo, ObjectStore
from carml.storage.errors import ObjectNotFound, StorageError
from carml.storage.local import LocalObjectStore
from carml.storage.s3 import S3ObjectStore

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "S3ObjectStore",
    "StorageError",
    "open_object_store",
]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _masked(url: str) -> str:
    """The URL with any user:password part hidden, fit for an error message."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@", r"\1***@", url)


def open_object_store(settings: Settings) -> ObjectStore:
    """The store `settings.object_store` names: s3://BUCKET[/PREFIX], file://PATH or a local folder."""
    url = settings.object_store
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme == "s3":
        parts = urlsplit(url)
        if "@" in parts.netloc:
            raise StorageError(
                f"CARML_OBJECT_STORE={_masked(url)} carries credentials; put them in CARML_S3_ACCESS_KEY and "
                f"CARML_S3_SECRET_KEY instead."
            )
        if parts.query or parts.fragment:
            raise StorageError(f"CARML_OBJECT_STORE={url}: expected s3://BUCKET or s3://BUCKET/PREFIX.")
        return S3ObjectStore(settings, parts.netloc, unquote(parts.path))
    if scheme == "file":
        return LocalObjectStore(Path(unquote(urlsplit(url).path)))
    if scheme:
        raise StorageError(
            f"CARML_OBJECT_STORE={_masked(url)}: the scheme '{scheme}' is not supported; "
            f"use s3://BUCKET or a local folder."
        )
    return LocalObjectStore(Path(url))
