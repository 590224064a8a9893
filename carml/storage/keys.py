"""Object keys: '/'-separated relative names that are equally safe as S3 object names and as file paths."""

from __future__ import annotations

import re

from carml.storage.errors import StorageError

MAX_KEY_BYTES = 1024  # S3's limit on object names
MAX_PART_BYTES = 255  # the usual file-name limit of local file systems
# The local store writes temp files beside their targets; keys may not look like them.
TEMP_PREFIX = ".carml-tmp-"
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:80] + "...")


def _problem(text: str) -> str | None:
    if text.startswith("/"):
        return "it must not start with '/'"
    if _FORBIDDEN.search(text):
        return "it must not contain backslashes or control characters"
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid Unicode text"
    if size > MAX_KEY_BYTES:
        return f"it is {size} bytes long, more than {MAX_KEY_BYTES}"
    for part in text.split("/"):
        if part in ("", ".", ".."):
            return "its '/'-separated parts must not be empty, '.' or '..'"
        if len(part.encode("utf-8")) > MAX_PART_BYTES:
            return f"a '/'-separated part is longer than {MAX_PART_BYTES} bytes"
        if part.startswith(TEMP_PREFIX):
            return f"a part must not start with {TEMP_PREFIX!r}"
    return None


def validate_key(key: str) -> str:
    """Return `key` if it is a valid object key, else raise `StorageError` saying why."""
    if not isinstance(key, str) or not key:
        raise StorageError(f"Invalid object key {key!r}: it must be a non-empty string.")
    problem = _problem(key)
    if problem:
        raise StorageError(f"Invalid object key {_shown(key)}: {problem}.")
    return key


def validate_prefix(prefix: str) -> str:
    """Return `prefix` if it can start a valid key ('' and a trailing '/' are allowed), else raise `StorageError`."""
    if not isinstance(prefix, str):
        raise StorageError(f"Invalid key prefix {prefix!r}: it must be a string.")
    body = prefix.removesuffix("/")
    if prefix and not body:
        raise StorageError("Invalid key prefix '/': use '' for every object.")
    problem = _problem(body) if body else None
    if problem:
        raise StorageError(f"Invalid key prefix {_shown(prefix)}: {problem}.")
    return prefix
