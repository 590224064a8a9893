"""s3:// artifacts against a real S3 API on loopback (moto's server), through the minio SDK."""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from carml.artifacts import ArtifactCache
from carml.errors import ArtifactError
from carml.manifest.common import ArtifactRef
from carml.settings import Settings

if TYPE_CHECKING:
    from minio import Minio

PAYLOAD = b"onnx-ish bytes " * 500


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def bucket(s3_client: Minio) -> str:
    """A fresh bucket per test: the S3 server lives for the whole session."""
    name = f"carml-{uuid.uuid4().hex[:12]}"
    s3_client.make_bucket(name)
    return name


@pytest.fixture()
def s3_settings(settings: Settings, s3_settings_fields: dict[str, Any]) -> Settings:
    return replace(settings, **s3_settings_fields)


def _put(client: Minio, bucket: str, key: str, data: bytes) -> str:
    client.put_object(bucket, key, io.BytesIO(data), len(data))
    return f"s3://{bucket}/{key}"


def test_s3_object_is_downloaded_and_cached(
    s3_settings: Settings, manifest_dir: Path, s3_client: Minio, bucket: str
) -> None:
    ref = ArtifactRef(url=_put(s3_client, bucket, "models/v1/model.onnx", PAYLOAD), sha256=_sha(PAYLOAD))

    path = ArtifactCache(s3_settings).resolve(ref, manifest_dir)

    assert path == s3_settings.cache_dir / "blobs" / _sha(PAYLOAD) / "model.onnx"
    assert path.read_bytes() == PAYLOAD
    s3_client.remove_object(bucket, "models/v1/model.onnx")
    assert ArtifactCache(s3_settings).resolve(ref, manifest_dir) == path  # served from the cache


def test_s3_missing_object(s3_settings: Settings, manifest_dir: Path, bucket: str) -> None:
    url = f"s3://{bucket}/nope/model.onnx"
    with pytest.raises(ArtifactError) as info:
        ArtifactCache(s3_settings).resolve(ArtifactRef(url=url, sha256="0" * 64), manifest_dir)
    message = str(info.value)
    assert url in message and "has no object 'nope/model.onnx'" in message
    assert not (s3_settings.cache_dir / "blobs").exists()


def test_s3_missing_bucket(s3_settings: Settings, manifest_dir: Path) -> None:
    url = f"s3://carml-missing-{uuid.uuid4().hex[:8]}/model.onnx"
    with pytest.raises(ArtifactError, match="does not exist at the S3 endpoint"):
        ArtifactCache(s3_settings).resolve(ArtifactRef(url=url, sha256="0" * 64), manifest_dir)


def test_s3_without_credentials_says_which_settings_to_set(
    s3_settings: Settings, manifest_dir: Path, s3_client: Minio, bucket: str
) -> None:
    anonymous = replace(s3_settings, s3_access_key=None, s3_secret_key=None)
    ref = ArtifactRef(url=_put(s3_client, bucket, "m.onnx", PAYLOAD), sha256=_sha(PAYLOAD))
    with pytest.raises(ArtifactError) as info:
        ArtifactCache(anonymous).resolve(ref, manifest_dir)
    assert "denied access" in str(info.value) and "CARML_S3_ACCESS_KEY" in str(info.value)


def test_s3_sha256_mismatch_leaves_nothing(
    s3_settings: Settings, manifest_dir: Path, s3_client: Minio, bucket: str
) -> None:
    ref = ArtifactRef(url=_put(s3_client, bucket, "m.onnx", PAYLOAD), sha256=_sha(b"other"))
    with pytest.raises(ArtifactError, match="failed its checksum"):
        ArtifactCache(s3_settings).resolve(ref, manifest_dir)
    assert [p for p in s3_settings.cache_dir.rglob("*") if p.is_file()] == []


def test_s3_size_cap(s3_settings: Settings, manifest_dir: Path, s3_client: Minio, bucket: str) -> None:
    ref = ArtifactRef(url=_put(s3_client, bucket, "m.onnx", PAYLOAD), sha256=_sha(PAYLOAD))
    with pytest.raises(ArtifactError, match="more than the limit of 100 bytes"):
        ArtifactCache(replace(s3_settings, artifact_max_bytes=100)).resolve(ref, manifest_dir)


def test_s3_unreachable_endpoint(s3_settings: Settings, manifest_dir: Path) -> None:
    closed = replace(s3_settings, s3_endpoint="127.0.0.1:9", http_timeout_s=2)
    ref = ArtifactRef(url="s3://bucket1/m.onnx", sha256="0" * 64)
    with pytest.raises(ArtifactError, match="could not be reached"):
        ArtifactCache(closed).resolve(ref, manifest_dir)
