"""Resolve manifest artifacts (file, pkg, http(s), s3 and plugin schemes) to verified local paths."""

from carml.artifacts.cache import ArtifactCache
from carml.artifacts.fetchers import ENTRY_POINT_GROUP, Fetcher

__all__ = ["ENTRY_POINT_GROUP", "ArtifactCache", "Fetcher"]
