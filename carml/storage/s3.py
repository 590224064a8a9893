"""`S3ObjectStore`: objects in one bucket (optionally under a prefix) of an S3/MinIO endpoint."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar, cast

from carml.errors import CarmlError
from carml.settings import Settings
from carml.storage.atomic import atomic_file
from carml.storage.base import DEFAULT_CONTENT_TYPE, ObjectInfo, ObjectStore
from carml.storage.errors import StorageError
from carml.storage.hashing import HashingReader
from carml.storage.keys import MAX_KEY_BYTES, validate_key, validate_prefix
from carml.storage.retry import RetryPolicy
from carml.storage.s3_client import build_minio
from carml.storage.s3_errors import is_retryable, storage_error

if TYPE_CHECKING:
    from minio import Minio

T = TypeVar("T")
_CHUNK = 1024 * 1024
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_RACE_CODES = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}


class S3ObjectStore(ObjectStore):
    """Key 'a/b' is the object 'PREFIX/a/b' of the bucket, which is created on first use if it is missing.

    Connection errors and 5xx answers are retried `attempts` times in all, backing off from `backoff_s`.
    """

    def __init__(
        self,
        settings: Settings,
        bucket: str,
        prefix: str = "",
        *,
        attempts: int = 4,
        backoff_s: float = 0.2,
        sleep: Callable[[float], None] | None = None,
    ):
        if not _BUCKET_NAME.match(bucket) or ".." in bucket:
            raise StorageError(
                f"Invalid S3 bucket name {bucket!r}: use 3-63 lowercase letters, digits, '.' and '-', "
                f"starting and ending with a letter or digit."
            )
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = settings.s3_endpoint
        self._settings = settings
        self._retry = RetryPolicy(attempts, backoff_s) if sleep is None else RetryPolicy(attempts, backoff_s, sleep)
        self._client_instance: Minio | None = None
        self._bucket_ready = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing
    def describe(self) -> str:
        where = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        return f"s3://{where} at {self.endpoint}"

    def _client(self) -> Minio:
        with self._lock:
            if self._client_instance is None:
                try:
                    # Retries happen here, per operation, so urllib3 must not multiply them.
                    self._client_instance = build_minio(self._settings, http_retries=0)
                except CarmlError as exc:  # e.g. an unreadable CA bundle
                    raise StorageError(str(exc)) from None
            return self._client_instance

    def _call(self, action: str, key: str, fn: Callable[[], T]) -> T:
        """`fn()` with retries; failures become `StorageError`s naming the endpoint and key."""
        from minio.error import MinioException
        from urllib3.exceptions import HTTPError

        try:
            return self._retry.call(fn, is_retryable)
        except (MinioException, HTTPError) as exc:
            raise storage_error(
                exc,
                action=action,
                key=key,
                store=self.describe(),
                endpoint=self.endpoint,
                attempts=self._retry.attempts,
            ) from None
        except CarmlError:
            raise
        except OSError as exc:  # a local file (source or destination), not the network
            name = f" {exc.filename}" if exc.filename else ""
            raise StorageError(f"Could not {action} '{key}': local file error{name}: {exc.strerror or exc}.") from None

    def _ready(self) -> Minio:
        """The client, once the bucket is known to exist (checked once per instance)."""
        client = self._client()
        if self._bucket_ready:
            return client
        with self._lock:
            if not self._bucket_ready:
                self._call("create the bucket for", self.bucket, lambda: self._ensure_bucket(client))
                self._bucket_ready = True
        return client

    def _ensure_bucket(self, client: Minio) -> None:
        from minio.error import S3Error

        if client.bucket_exists(self.bucket):
            return
        try:
            client.make_bucket(self.bucket)
        except S3Error as exc:
            if exc.code not in _BUCKET_RACE_CODES:  # another process created it since we looked: fine
                raise

    def _name(self, key: str) -> str:
        validate_key(key)
        name = f"{self.prefix}/{key}" if self.prefix else key
        if len(name.encode("utf-8")) > MAX_KEY_BYTES:
            raise StorageError(f"The object key '{key[:80]}...' is too long once prefixed with '{self.prefix}/'.")
        return name

    def _key(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    # ------------------------------------------------------------------ writes
    def put_bytes(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        name = self._name(key)
        client = self._ready()
        sha256 = hashlib.sha256(data).hexdigest()
        # A single put_object is atomic on S3: readers see the old or the new object, never a mix.
        self._call(
            "upload",
            key,
            lambda: client.put_object(self.bucket, name, io.BytesIO(data), len(data), content_type=content_type),
        )
        return ObjectInfo(key, len(data), sha256)

    def put_file(self, key: str, path: Path, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        name = self._name(key)
        try:
            size = os.stat(path).st_size
        except OSError as exc:
            raise StorageError(f"Could not store '{key}': cannot read {path}: {exc.strerror or exc}.") from None
        client = self._ready()

        def upload() -> str:
            # Reopened on every attempt, so a retry re-reads (and re-hashes) the file from its start.
            with open(path, "rb") as source:
                reader = HashingReader(source)
                client.put_object(self.bucket, name, cast(BinaryIO, reader), size, content_type=content_type)
                return reader.hexdigest()

        return ObjectInfo(key, size, self._call("upload", key, upload))

    # ------------------------------------------------------------------ reads
    def get_bytes(self, key: str) -> bytes:
        name = self._name(key)
        client = self._ready()

        def fetch() -> bytes:
            response = client.get_object(self.bucket, name)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return self._call("read", key, fetch)

    def download(self, key: str, dest_path: Path) -> None:
        name = self._name(key)
        client = self._ready()

        def fetch() -> None:
            response = client.get_object(self.bucket, name)
            try:
                with atomic_file(Path(dest_path)) as out:
                    for chunk in response.stream(_CHUNK):
                        out.write(chunk)
            finally:
                response.close()
                response.release_conn()

        self._call("download", key, fetch)

    @contextlib.contextmanager
    def open_stream(self, key: str) -> Iterator[BinaryIO]:
        name = self._name(key)
        client = self._ready()
        # Only opening is retried: once bytes have reached the caller, a retry could not take them back.
        response = self._call("read", key, lambda: client.get_object(self.bucket, name))
        try:
            yield cast(BinaryIO, response)
        finally:
            response.close()
            response.release_conn()

    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        name = self._name(key)
        client = self._ready()

        def stat() -> bool:
            try:
                client.stat_object(self.bucket, name)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                    return False
                raise
            return True

        return self._call("look up", key, stat)

    # ------------------------------------------------------------------ listing
    def _names(self, prefix: str) -> builtins.list[tuple[str, int]]:
        validate_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        client = self._ready()

        def fetch() -> builtins.list[tuple[str, int]]:
            objects = client.list_objects(self.bucket, prefix=full or None, recursive=True)
            return [(str(o.object_name), int(o.size or 0)) for o in objects if not o.is_dir]

        return self._call("list", prefix, fetch)

    def list(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        found = []
        for name, size in self._names(prefix):
            key = self._key(name)
            # Objects written by other tools may have names that are no valid key; they are not ours to list.
            with contextlib.suppress(StorageError):
                found.append(ObjectInfo(validate_key(key), size))
        return sorted(found, key=lambda info: info.key)

    def delete_prefix(self, prefix: str) -> int:
        from minio.deleteobjects import DeleteObject

        # Everything under the prefix goes, including objects with names `list` does not show.
        names = [name for name, _ in self._names(prefix)]
        client = self._ready()

        def delete() -> None:
            errors = list(client.remove_objects(self.bucket, (DeleteObject(n) for n in names)))  # lazy: drain it
            if errors:
                first = errors[0]
                raise StorageError(
                    f"Could not delete {len(errors)} of {len(names)} objects under '{prefix}' in {self.describe()}: "
                    f"'{self._key(str(first.name))}': {first.code} {first.message}."
                )

        if names:
            self._call("delete objects under", prefix, delete)
        return len(names)
