"""http(s) downloads against real loopback servers: caching, verification, limits and TLS."""

from __future__ import annotations

import hashlib
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from carml.artifacts import ArtifactCache
from carml.artifacts.store import BlobStore, blob_name
from carml.errors import ArtifactError
from carml.manifest.common import ArtifactRef
from carml.settings import Settings

if TYPE_CHECKING:  # fixture types only; tests never import conftest at run time
    from conftest import LoopbackServer, TlsFiles

PAYLOAD = b"\x00model weights\xff" * 1000


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cache_files(settings: Settings) -> list[Path]:
    return [p for p in settings.cache_dir.rglob("*") if p.is_file()] if settings.cache_dir.exists() else []


def test_download_is_cached_and_reused_without_network(
    settings: Settings, manifest_dir: Path, http_server: LoopbackServer
) -> None:
    url = http_server.publish("models/resnet.onnx", PAYLOAD)
    ref = ArtifactRef(url=url, sha256=_sha(PAYLOAD))

    path = ArtifactCache(settings).resolve(ref, manifest_dir)
    assert path == settings.cache_dir / "blobs" / _sha(PAYLOAD) / "resnet.onnx"  # basename kept
    assert path.read_bytes() == PAYLOAD

    http_server.stop()
    assert ArtifactCache(settings).resolve(ref, manifest_dir) == path  # a new process-like object: cache hit
    assert _cache_files(settings) == [path]  # no temp file left behind


def test_corrupted_blob_is_downloaded_again(
    settings: Settings, manifest_dir: Path, http_server: LoopbackServer
) -> None:
    ref = ArtifactRef(url=http_server.publish("m.bin", PAYLOAD), sha256=_sha(PAYLOAD))
    path = ArtifactCache(settings).resolve(ref, manifest_dir)
    path.write_bytes(b"bit rot")

    assert ArtifactCache(settings).resolve(ref, manifest_dir).read_bytes() == PAYLOAD


def test_http_404_is_a_clear_error(settings: Settings, manifest_dir: Path, http_server: LoopbackServer) -> None:
    url = http_server.url("missing.onnx")
    with pytest.raises(ArtifactError) as info:
        ArtifactCache(settings).resolve(ArtifactRef(url=url, sha256="0" * 64), manifest_dir)
    assert url in str(info.value) and "HTTP 404" in str(info.value)
    assert _cache_files(settings) == []


def test_unreachable_server_is_a_clear_error(settings: Settings, manifest_dir: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/m.onnx"
    with pytest.raises(ArtifactError, match=f"Could not download {url}"):
        ArtifactCache(settings).resolve(ArtifactRef(url=url, sha256="0" * 64), manifest_dir)


def test_sha256_mismatch_leaves_nothing_in_the_cache(
    settings: Settings, manifest_dir: Path, http_server: LoopbackServer
) -> None:
    url = http_server.publish("m.onnx", PAYLOAD)
    expected = _sha(b"something else")
    with pytest.raises(ArtifactError) as info:
        ArtifactCache(settings).resolve(ArtifactRef(url=url, sha256=expected), manifest_dir)

    message = str(info.value)
    assert url in message and expected in message and _sha(PAYLOAD) in message
    assert _cache_files(settings) == []
    assert not (settings.cache_dir / "blobs").exists()


def test_size_cap_refuses_large_downloads(settings: Settings, manifest_dir: Path, http_server: LoopbackServer) -> None:
    url = http_server.publish("big.bin", PAYLOAD)
    small = replace(settings, artifact_max_bytes=1024)
    with pytest.raises(ArtifactError, match="more than the limit of 1024 bytes"):
        ArtifactCache(small).resolve(ArtifactRef(url=url, sha256=_sha(PAYLOAD)), manifest_dir)
    assert _cache_files(settings) == []


def test_size_cap_also_holds_without_a_content_length(settings: Settings) -> None:
    store = BlobStore(settings.cache_dir)
    endless = (b"x" * 1000 for _ in range(100))  # e.g. a chunked response that never says its size
    with pytest.raises(ArtifactError, match="stopped after 5000 bytes"):
        store.put(endless, "0" * 64, "http://example.invalid/a.bin", max_bytes=5000)
    assert _cache_files(settings) == []


def test_concurrent_resolves_all_get_the_blob(
    settings: Settings, manifest_dir: Path, http_server: LoopbackServer
) -> None:
    ref = ArtifactRef(url=http_server.publish("m.onnx", PAYLOAD), sha256=_sha(PAYLOAD))

    def resolve(_: int) -> bytes:
        return ArtifactCache(settings).resolve(ref, manifest_dir).read_bytes()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(resolve, range(8)))
    assert results == [PAYLOAD] * 8
    assert len(_cache_files(settings)) == 1


def test_https_with_private_ca_bundle(
    settings: Settings, manifest_dir: Path, https_server: LoopbackServer, tls_files: TlsFiles
) -> None:
    ref = ArtifactRef(url=https_server.publish("m.onnx", PAYLOAD), sha256=_sha(PAYLOAD))
    trusting = replace(settings, ca_bundle=tls_files.ca_cert)

    assert ArtifactCache(trusting).resolve(ref, manifest_dir).read_bytes() == PAYLOAD


def test_https_without_ca_bundle_fails_verification(
    settings: Settings, manifest_dir: Path, https_server: LoopbackServer
) -> None:
    url = https_server.publish("m.onnx", PAYLOAD)
    with pytest.raises(ArtifactError) as info:
        ArtifactCache(settings).resolve(ArtifactRef(url=url, sha256=_sha(PAYLOAD)), manifest_dir)
    message = str(info.value)
    assert url in message and "certificate could not be verified" in message and "CARML_CA_BUNDLE" in message
    assert _cache_files(settings) == []


def test_unreadable_ca_bundle_is_a_clear_error(
    settings: Settings, manifest_dir: Path, https_server: LoopbackServer, tmp_path: Path
) -> None:
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello")
    ref = ArtifactRef(url=https_server.publish("m.onnx", PAYLOAD), sha256=_sha(PAYLOAD))
    with pytest.raises(ArtifactError, match="CARML_CA_BUNDLE"):
        ArtifactCache(replace(settings, ca_bundle=bad)).resolve(ref, manifest_dir)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://h/models/resnet50.onnx?download=1", "resnet50.onnx"),
        ("https://h/a%20b.tar.gz", "a_b.tar.gz"),
        ("https://h/x/..%2F..%2Fevil", "evil"),
        ("https://h/", "blob"),
        ("s3://bucket/deep/key/model.pt", "model.pt"),
    ],
)
def test_blob_names_keep_the_extension_and_stay_safe(url: str, name: str) -> None:
    assert blob_name(url) == name


def test_a_shared_object_store_spares_other_workers_the_download(
    settings: Settings, manifest_dir: Path, http_server: LoopbackServer, tmp_path: Path
) -> None:
    from carml.storage import LocalObjectStore

    shared = LocalObjectStore(tmp_path / "deployment-store")
    url = http_server.publish("models/big.onnx", PAYLOAD)
    ref = ArtifactRef(url=url, sha256=_sha(PAYLOAD))
    ArtifactCache(settings, shared=shared).resolve(ref, manifest_dir)  # the first worker fetches the origin
    assert [o.key for o in shared.list("artifacts/")] == [f"artifacts/{ref.sha256}/big.onnx"]

    http_server.stop()  # another machine, with an empty local cache, and the origin gone
    other = replace(settings, cache_dir=tmp_path / "other-machine-cache")
    path = ArtifactCache(other, shared=shared).resolve(ref, manifest_dir)
    assert path.read_bytes() == PAYLOAD and path.is_relative_to(other.cache_dir)

    shared.put_bytes(f"artifacts/{ref.sha256}/big.onnx", b"tampered")  # a bad shared copy is never used
    third = replace(settings, cache_dir=tmp_path / "third-machine-cache")
    with pytest.raises(ArtifactError):
        ArtifactCache(third, shared=shared).resolve(ref, manifest_dir)
    assert not any(p.is_file() and p.suffix == ".onnx" for p in third.cache_dir.rglob("*"))
