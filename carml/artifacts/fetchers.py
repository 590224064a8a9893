"""Which fetcher downloads which URL scheme: built-ins plus the `carml.artifact_fetchers` entry points.

A fetcher is a callable `(url, settings) -> Iterator[bytes]` that streams the artifact's bytes and raises
`ArtifactError` with a complete message when it cannot. Hashing, size limits and caching are not its job.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points

from carml.artifacts.http_fetcher import fetch_http
from carml.artifacts.s3_fetcher import fetch_s3
from carml.errors import ArtifactError
from carml.settings import Settings

Fetcher = Callable[[str, Settings], Iterator[bytes]]

ENTRY_POINT_GROUP = "carml.artifact_fetchers"
BUILTIN_FETCHERS: dict[str, Fetcher] = {"http": fetch_http, "https": fetch_http, "s3": fetch_s3}


def load_fetchers() -> dict[str, Fetcher]:
    """Built-ins, then plugins by entry-point name (a plugin may replace a built-in, e.g. another S3 client).

    A plugin that fails to load is skipped with a warning: one broken package must not stop every model.
    """
    fetchers = dict(BUILTIN_FETCHERS)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            fetcher = entry.load()
        except Exception as exc:  # any import-time failure of third-party code
            warnings.warn(
                f"The artifact fetcher plugin '{entry.name}' ({entry.value}) could not be loaded and is "
                f"skipped: {type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        if not callable(fetcher):
            warnings.warn(
                f"The artifact fetcher plugin '{entry.name}' ({entry.value}) is not callable and is skipped.",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        fetchers[entry.name.lower()] = fetcher
    return fetchers


def fetcher_for(fetchers: dict[str, Fetcher], scheme: str, url: str) -> Fetcher:
    """The fetcher for a scheme, or an `ArtifactError` listing the schemes that can be fetched."""
    try:
        return fetchers[scheme]
    except KeyError:
        known = ", ".join(sorted(fetchers))
        raise ArtifactError(
            f"Cannot fetch {url}: no fetcher handles the '{scheme}' scheme (available: {known})."
        ) from None
