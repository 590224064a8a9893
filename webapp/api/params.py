"""Strict reading of request bodies, forms and query strings: unknown or ill-typed fields are 400s naming them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from flask import request
from werkzeug.datastructures import MultiDict

from carml.evaluation.partial import CONFUSION_VIEWS
from carml.manifest.common import NAME_PATTERN
from webapp.api.errors import ApiError

# Catalog names only: a path or a manifest file name would let a request read files on the server.
NAME = re.compile(NAME_PATTERN)
HARDWARE_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_INT = 2**31 - 1  # database integer columns
_DECIMAL = re.compile(r"^[0-9]{1,10}$")
# NUL and other control characters: PostgreSQL refuses NUL in text, so they would fail as a server error.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Job ids are UUIDs; anything else cannot name a job, and need not reach the database.
_JOB_ID = re.compile(r"^[0-9a-fA-F-]{1,36}$")


def json_object() -> dict[str, Any]:
    """The request body as a JSON object."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # `silent` covers malformed JSON only; [[[[... thousands deep exhausts the parser
        raise ApiError("the request body is nested too deeply; send a flat JSON object") from None
    if not isinstance(body, dict):
        raise ApiError("the request body must be a JSON object")
    return body


def reject_unknown(given: Iterable[str], allowed: Iterable[str]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ApiError(
            f"unknown field {unknown[0]!r}; expected some of: {', '.join(sorted(allowed))}", field=unknown[0]
        )


def single_values(values: MultiDict[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    """A form or query string as a dict, refusing unknown names and names given twice."""
    reject_unknown(values.keys(), allowed)
    for name in values:
        if len(values.getlist(name)) > 1:
            raise ApiError(f"{name} is given more than once", field=name)
    return values.to_dict()


def text(
    body: Mapping[str, Any],
    name: str,
    *,
    default: str | None = None,
    required: bool = False,
    pattern: re.Pattern[str] | None = None,
    max_length: int = 255,
) -> str | None:
    """A string field; null or absent gives `default` (an error when `required`)."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(f"{name} is required", field=name)
        return default
    if not isinstance(value, str):
        raise ApiError(f"{name} must be a string", field=name)
    if len(value) > max_length:
        raise ApiError(f"{name} is longer than {max_length} characters", field=name)
    if _CONTROL.search(value):
        raise ApiError(f"{name} must not contain control characters", field=name)
    if pattern is not None and not pattern.fullmatch(value):
        raise ApiError(f"{name} {value!r} is not a valid name (allowed: {pattern.pattern})", field=name)
    return value


def name(body: Mapping[str, Any], field: str, *, required: bool = False) -> str | None:
    """A catalog-style name: lowercase letters, digits, '.', '_', '-' and no manifest-file ending."""
    value = text(body, field, required=required, pattern=NAME, max_length=100)
    if value is not None and value.endswith((".yaml", ".yml")):
        raise ApiError(f"{field} must be a name, not a manifest file", field=field)
    return value


def whole_number(value: Any) -> int | None:
    """A JSON number with an integral value as an int, else None. JavaScript has one number type, so its clients
    send 150.0 for 150; 150.5, NaN, infinities, booleans and strings are not whole numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():  # NB: False for NaN and the infinities
        return int(value)
    return None


def integer(
    body: Mapping[str, Any], name: str, *, default: int | None = None, minimum: int = 0, maximum: int = MAX_INT
) -> int | None:
    """A JSON integer field (150.0 counts as 150; other floats, booleans and strings are refused); null or absent
    gives `default`."""
    value = body.get(name)
    if value is None:
        return default
    number = whole_number(value)
    if number is None:
        raise ApiError(f"{name} must be an integer, got {json_shown(value)}", field=name)
    return _in_range(name, number, minimum, maximum)


def json_shown(value: Any) -> str:
    """A refused JSON value as an error message shows it: as the client wrote it (true, NaN, "16", not Python's
    True, nan, '16'), cut to 40 characters."""
    return json.dumps(value, default=repr)[:40]


def integer_text(values: Mapping[str, str], name: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int | None:
    """An integer written in a form or query string field; None when absent."""
    value = values.get(name)
    if value is None or value == "":
        return None
    if not _DECIMAL.fullmatch(value):
        raise ApiError(f"{name} must be a whole number, got {value!r}", field=name)
    return _in_range(name, int(value), minimum, maximum)


def boolean_text(values: Mapping[str, str], name: str) -> bool | None:
    """true/false (or 1/0) in a form or query string field; None when absent."""
    value = values.get(name)
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered not in ("true", "false", "1", "0"):
        raise ApiError(f"{name} must be true or false, got {value!r}", field=name)
    return lowered in ("true", "1")


def confusion_text(values: Mapping[str, str]) -> str:
    """`confusion` in a query string: how a result's confusion matrix is shown (`CONFUSION_VIEWS`); `matrix`
    when absent."""
    value = values.get("confusion") or "matrix"
    if value not in CONFUSION_VIEWS:
        raise ApiError(f"confusion must be one of {', '.join(CONFUSION_VIEWS)}, got {value[:40]!r}", field="confusion")
    return value


def _in_range(name: str, value: int, minimum: int, maximum: int) -> int:
    if not minimum <= value <= maximum:
        raise ApiError(f"{name} must be between {minimum} and {maximum}, got {value}", field=name)
    return value


def job_id_param(value: str) -> str:
    """A job id from a URL; one that cannot be a job's is a 404 at once."""
    if not _JOB_ID.fullmatch(value):
        raise ApiError(f"no job {value[:40]!r}", status=404, field="job_id")
    return value


def file_name(value: str | None, default: str) -> str:
    """An uploaded file's name as the client gave it, less control characters (stored in JSON, shown back)."""
    return _CONTROL.sub("_", value or "")[:255] or default


def value_list(body: Mapping[str, Any], name: str, *, default: list[Any], max_items: int = 16) -> list[Any]:
    """A JSON list field (a single value counts as a list of one); absent or null gives `default`."""
    value = body.get(name)
    if value is None:
        return default
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ApiError(f"{name} must list at least one value", field=name)
    if len(values) > max_items:
        raise ApiError(f"{name} lists more than {max_items} values", field=name)
    return values
