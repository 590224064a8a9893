"""The object store, one suite over both backends: a local folder and S3 (moto's server on loopback)."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from carml.settings import Settings
from carml.storage import (
    LocalObjectStore,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    S3ObjectStore,
    StorageError,
    open_object_store,
)
from carml.storage.keys import TEMP_PREFIX

if TYPE_CHECKING:
    from minio import Minio

HOSTILE_KEYS = ["../x", "/abs", "a//b", "a\\b", "", "a/../../x", "a/./b", "a/", "a\x00b", TEMP_PREFIX + "x", "x" * 1025]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bucket() -> str:
    return f"carml-{uuid.uuid4().hex[:12]}"


@pytest.fixture()
def s3_settings(tmp_path: Path, s3_endpoint: str) -> Settings:
    """Settings pointing at the session's moto server with the credentials it accepts."""
    return Settings(
        home=tmp_path / "home",
        s3_endpoint=s3_endpoint,
        s3_access_key="testing",
        s3_secret_key="testing",
        s3_secure=False,
        s3_region="us-east-1",
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """A fresh, empty store of each kind, opened the way the service opens it: from the settings' URL."""
    if request.param == "local":
        url = str(tmp_path / "area" / "objects")
        settings = Settings(home=tmp_path / "home", object_store_url=url)
    else:
        settings = replace(request.getfixturevalue("s3_settings"), object_store_url=f"s3://{_bucket()}")
    return open_object_store(settings)


# --- both backends ------------------------------------------------------------------------------------------


def test_bytes_round_trip(store: ObjectStore) -> None:
    data = b"\x00\x01 per-item output \xff" * 1000

    info = store.put_bytes("runs/1/items/0001.json", data, content_type="application/json")

    assert info == ObjectInfo("runs/1/items/0001.json", len(data), _sha(data))
    assert store.get_bytes("runs/1/items/0001.json") == data


def test_empty_object(store: ObjectStore) -> None:
    assert store.put_bytes("empty", b"") == ObjectInfo("empty", 0, _sha(b""))
    assert store.get_bytes("empty") == b""
    assert store.exists("empty")


def test_file_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # a few MiB: several read chunks
    source = tmp_path / "upload.bin"
    source.write_bytes(data)

    info = store.put_file("datasets/upload.bin", source)
    dest = tmp_path / "out" / "deep" / "copy.bin"
    store.download("datasets/upload.bin", dest)

    assert info == ObjectInfo("datasets/upload.bin", len(data), _sha(data))
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["copy.bin"]  # no temp file left behind


def test_put_file_missing_source(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot read"):
        store.put_file("k", tmp_path / "nope.bin")
    assert not store.exists("k")


def test_overwrite_leaves_one_object_with_the_latest_content(store: ObjectStore) -> None:
    store.put_bytes("a/key", b"first version, longer than the second")
    info = store.put_bytes("a/key", b"second")

    assert info.size == 6
    assert store.get_bytes("a/key") == b"second"
    assert store.list("") == [ObjectInfo("a/key", 6)]


def test_list_is_sorted_and_matches_the_prefix_exactly(store: ObjectStore) -> None:
    for key in ["runs/2/y", "runs/1/b", "other", "runs/10/x", "runs/1/a", "runsx"]:
        store.put_bytes(key, key.encode())

    assert [i.key for i in store.list("runs/1/")] == ["runs/1/a", "runs/1/b"]
    assert [i.key for i in store.list("runs/1")] == ["runs/1/a", "runs/1/b", "runs/10/x"]
    assert [i.key for i in store.list("runs/")] == ["runs/1/a", "runs/1/b", "runs/10/x", "runs/2/y"]
    assert [i.key for i in store.list("")] == ["other", "runs/1/a", "runs/1/b", "runs/10/x", "runs/2/y", "runsx"]
    assert store.list("runs/1/a") == [ObjectInfo("runs/1/a", len(b"runs/1/a"))]
    assert store.list("nothing/") == []
    assert store.list("runs/3") == []


def test_delete_prefix(store: ObjectStore) -> None:
    for key in ["runs/1/a", "runs/1/sub/b", "runs/10/c", "keep"]:
        store.put_bytes(key, b"x")

    assert store.delete_prefix("runs/1/") == 2
    assert [i.key for i in store.list("")] == ["keep", "runs/10/c"]
    assert store.delete_prefix("runs/1/") == 0
    assert store.delete_prefix("runs") == 1
    assert not store.exists("runs/10/c")
    store.put_bytes("runs/1/a", b"again")  # the pruned folders come back on the next write
    assert store.get_bytes("runs/1/a") == b"again"


def test_exists(store: ObjectStore) -> None:
    store.put_bytes("a/b", b"x")

    assert store.exists("a/b")
    assert not store.exists("a")  # a "folder" is not an object
    assert not store.exists("a/c")


def test_missing_object_is_object_not_found(store: ObjectStore, tmp_path: Path) -> None:
    store.put_bytes("present", b"x")
    dest = tmp_path / "dl" / "missing.bin"

    with pytest.raises(ObjectNotFound, match="'missing'"):
        store.get_bytes("missing")
    with pytest.raises(ObjectNotFound):
        store.download("missing", dest)
    with pytest.raises(ObjectNotFound), store.open_stream("missing"):
        pass
    assert not dest.exists()


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_are_refused_and_nothing_is_written(store: ObjectStore, key: str, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"payload")
    for attempt in (
        lambda: store.put_bytes(key, b"payload"),
        lambda: store.put_file(key, source),
        lambda: store.get_bytes(key),
        lambda: store.exists(key),
        lambda: store.download(key, tmp_path / "dest"),
    ):
        with pytest.raises(StorageError, match="Invalid object key") as caught:
            attempt()
        assert not isinstance(caught.value, ObjectNotFound)
        assert "\n" not in str(caught.value)
    assert store.list("") == []
    assert not (tmp_path / "area" / "x").exists() and not (tmp_path / "x").exists()
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("prefix", ["../", "/abs", "a//", "a\\b", "/"])
def test_hostile_prefixes_are_refused(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(StorageError, match="Invalid key prefix"):
        store.list(prefix)
    with pytest.raises(StorageError, match="Invalid key prefix"):
        store.delete_prefix(prefix)


def test_open_stream_streams_the_content(store: ObjectStore) -> None:
    data = bytes(range(256)) * 400
    store.put_bytes("big.bin", data)

    with store.open_stream("big.bin") as stream:
        chunks = list(iter(lambda: stream.read(4096), b""))

    assert b"".join(chunks) == data
    assert len(chunks) >= len(data) // 4096


def test_describe(store: ObjectStore, tmp_path: Path) -> None:
    if isinstance(store, LocalObjectStore):
        assert store.describe() == str((tmp_path / "area" / "objects").resolve())
    else:
        assert store.describe().startswith("s3://carml-") and " at 127.0.0.1:" in store.describe()


# --- open_object_store --------------------------------------------------------------------------------------


def test_default_store_is_a_folder_under_home(tmp_path: Path) -> None:
    store = open_object_store(Settings(home=tmp_path))
    assert isinstance(store, LocalObjectStore)
    assert store.describe() == str((tmp_path / "objects").resolve())
    store.put_bytes("a", b"x")  # the folder is created on the first write
    assert (tmp_path / "objects" / "a").read_bytes() == b"x"


def test_file_url_is_a_local_folder(tmp_path: Path) -> None:
    store = open_object_store(Settings(home=tmp_path, object_store_url=f"file://{tmp_path}/store"))
    assert store.describe() == str((tmp_path / "store").resolve())


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://user:hunter2@bucket", "carries credentials"),
        ("gs://bucket", "not supported"),
        ("https://me:hunter2@host/bucket", "not supported"),
        ("s3://Bad_Bucket", "Invalid S3 bucket name"),
        ("s3://", "Invalid S3 bucket name"),
    ],
)
def test_bad_store_urls(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message) as caught:
        open_object_store(Settings(home=tmp_path, object_store_url=url))
    assert "hunter2" not in str(caught.value)


# --- S3 only ------------------------------------------------------------------------------------------------


def test_s3_bucket_is_created_on_first_use(s3_settings: Settings, s3_client: Minio) -> None:
    bucket = _bucket()
    store = S3ObjectStore(s3_settings, bucket)
    assert not s3_client.bucket_exists(bucket)  # nothing happens before the first use

    store.put_bytes("k", b"v")

    assert s3_client.bucket_exists(bucket)
    assert store.get_bytes("k") == b"v"


def test_s3_tolerates_a_bucket_created_by_someone_else_meanwhile(
    s3_settings: Settings, s3_client: Minio, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _bucket()
    store = S3ObjectStore(s3_settings, bucket)
    s3_client.make_bucket(bucket)
    # The race: our check saw no bucket, then another process created it before our make_bucket.
    monkeypatch.setattr(store._client(), "bucket_exists", lambda name: False)

    store.put_bytes("k", b"v")

    assert s3_client.get_object(bucket, "k").read() == b"v"


def test_s3_prefix_from_the_url(s3_settings: Settings, s3_client: Minio) -> None:
    bucket = _bucket()
    store = open_object_store(replace(s3_settings, object_store_url=f"s3://{bucket}/team/a/"))

    store.put_bytes("x/y", b"v")

    assert store.describe() == f"s3://{bucket}/team/a at {s3_settings.s3_endpoint}"
    assert [o.object_name for o in s3_client.list_objects(bucket, recursive=True)] == ["team/a/x/y"]
    assert store.list("") == [ObjectInfo("x/y", 1)]
    assert store.delete_prefix("") == 1
    assert list(s3_client.list_objects(bucket, recursive=True)) == []


def test_s3_unreachable_endpoint_fails_after_bounded_retries(s3_settings: Settings) -> None:
    settings = replace(s3_settings, s3_endpoint="127.0.0.1:1", s3_secret_key="hunter2-secret")
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    store = S3ObjectStore(settings, _bucket(), attempts=4, backoff_s=0.01, sleep=sleep)
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        store.put_bytes("k", b"v")
    elapsed = time.monotonic() - started

    message = str(caught.value)
    assert elapsed < 5
    assert sleeps == [0.01, 0.02, 0.04]  # 4 attempts, backing off exponentially
    assert "127.0.0.1:1" in message and "after 4 attempts" in message and "could not be reached" in message
    assert "hunter2" not in message and "testing" not in message and "\n" not in message


def test_s3_server_errors_are_retried(s3_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from minio.error import ServerError

    store = S3ObjectStore(s3_settings, _bucket(), attempts=4, backoff_s=0.0)
    client = store._client()
    real_put = client.put_object
    failures = iter([ServerError("boom", 503), ServerError("boom", 502)])

    def flaky_put(*args: Any, **kwargs: Any) -> Any:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_put(*args, **kwargs)

    monkeypatch.setattr(client, "put_object", flaky_put)

    assert store.put_bytes("k", b"v").size == 1
    assert store.get_bytes("k") == b"v"


def test_s3_client_errors_are_not_retried(s3_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from minio.error import S3Error
    from urllib3 import HTTPResponse

    sleeps: list[float] = []
    store = S3ObjectStore(s3_settings, _bucket(), sleep=sleeps.append)
    calls: list[str] = []

    def denied(bucket: str, name: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        raise S3Error(HTTPResponse(status=403), "AccessDenied", "Access Denied", f"/{bucket}/{name}", None, None)

    monkeypatch.setattr(store._client(), "put_object", denied)

    with pytest.raises(StorageError, match="denied access \\(AccessDenied\\); check CARML_S3_ACCESS_KEY"):
        store.put_bytes("k", b"v")
    assert calls == ["k"] and sleeps == []


# --- local only ---------------------------------------------------------------------------------------------


def test_local_concurrent_writers_leave_one_complete_object(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    payloads = [bytes([n]) * (256 * 1024 + n) for n in range(8)]
    barrier = threading.Barrier(len(payloads))
    errors: list[BaseException] = []

    def write(payload: bytes) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                store.put_bytes("shared/key.bin", payload)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert store.get_bytes("shared/key.bin") in payloads
    assert [p.name for p in (tmp_path / "objects" / "shared").iterdir()] == ["key.bin"]


def test_local_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = LocalObjectStore(tmp_path / "objects")
    store.put_bytes("seed", b"x")
    (tmp_path / "objects" / "link").symlink_to(outside)

    with pytest.raises(StorageError, match="leads outside"):
        store.put_bytes("link/evil", b"x")
    assert list(outside.iterdir()) == []
    assert [i.key for i in store.list("")] == ["seed"]


def test_local_key_that_is_a_folder(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    store.put_bytes("a/b", b"x")

    with pytest.raises(StorageError, match="Could not write 'a'"):
        store.put_bytes("a", b"y")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("a")
    assert store.get_bytes("a/b") == b"x"
