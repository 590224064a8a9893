"""The fetcher registry: built-ins, entry-point plugins, and plugins that fail to load."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from carml.artifacts import ArtifactCache, fetchers
from carml.artifacts.fetchers import ENTRY_POINT_GROUP, fetcher_for, load_fetchers
from carml.errors import ArtifactError
from carml.manifest.common import ArtifactRef
from carml.settings import Settings

PLUGIN_BYTES = b"from a plugin"


def fetch_from_plugin(url: str, settings: Settings) -> Iterator[bytes]:
    """A fetcher as a third-party package would ship it (referenced by the entry points below)."""
    yield PLUGIN_BYTES


def _use_entry_points(monkeypatch: pytest.MonkeyPatch, *points: EntryPoint) -> None:
    def entry_points(group: str) -> list[EntryPoint]:
        return [p for p in points if p.group == group]

    monkeypatch.setattr(fetchers, "entry_points", entry_points)


def _entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_builtins_cover_http_https_and_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_entry_points(monkeypatch)
    assert {"http", "https", "s3"} <= set(load_fetchers())


def test_broken_plugin_warns_and_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_entry_points(
        monkeypatch,
        _entry("gcs", "carml_no_such_plugin_module:fetch"),
        _entry("notcallable", "carml.artifacts.fetchers:ENTRY_POINT_GROUP"),
    )
    with pytest.warns(RuntimeWarning) as warned:
        table = load_fetchers()
    messages = [str(w.message) for w in warned]
    assert any("'gcs'" in m and "could not be loaded" in m for m in messages)
    assert any("'notcallable'" in m and "not callable" in m for m in messages)
    assert "gcs" not in table and "https" in table


def test_plugin_can_replace_a_scheme(monkeypatch: pytest.MonkeyPatch, settings: Settings, manifest_dir: Path) -> None:
    _use_entry_points(monkeypatch, _entry("s3", f"{__name__}:fetch_from_plugin"))
    ref = ArtifactRef(url="s3://bucket/plugin.bin", sha256=hashlib.sha256(PLUGIN_BYTES).hexdigest())

    path = ArtifactCache(settings).resolve(ref, manifest_dir)

    assert path.read_bytes() == PLUGIN_BYTES and path.name == "plugin.bin"


def test_plugin_exceptions_become_artifact_errors(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, manifest_dir: Path
) -> None:
    def failing(url: str, settings: Settings) -> Iterator[bytes]:
        raise ConnectionResetError("peer went away")
        yield b""  # makes this a generator, as fetchers usually are

    monkeypatch.setattr(fetchers, "BUILTIN_FETCHERS", {"s3": failing})
    _use_entry_points(monkeypatch)
    with pytest.raises(ArtifactError, match="Could not fetch s3://b/k.bin: ConnectionResetError: peer went away"):
        ArtifactCache(settings).resolve(ArtifactRef(url="s3://b/k.bin", sha256="0" * 64), manifest_dir)


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(ArtifactError, match=r"no fetcher handles the 'ftp' scheme \(available: http, https, s3\)"):
        fetcher_for(dict(fetchers.BUILTIN_FETCHERS), "ftp", "ftp://host/file")
