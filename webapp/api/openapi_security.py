"""The OpenAPI document's authentication: a bearer token on every operation but the health check."""

from __future__ import annotations

from typing import Any

from webapp.api.openapi_schemas import STRING, ref

PUBLIC_PATHS = frozenset({"/health"})
# Operations a caller's role can refuse (403): publishing or removing models, sharing or removing datasets, listing
# another owner's work.
ROLE_CHECKED = frozenset(
    {
        ("/models", "post"),
        ("/models/{name}", "delete"),
        ("/datasets", "post"),
        ("/datasets/{name}", "delete"),
        ("/jobs", "get"),
        ("/comparisons", "get"),
    }
)

BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API token: `carml tokens create --user NAME`, or the Account page of the web app. "
    "Shown once when created; revocable.",
}


def _error(description: str, **headers: Any) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ref("Error")}}}
    if headers:
        response["headers"] = headers
    return response


def security_responses() -> dict[str, Any]:
    """The 401 and 403 response components."""
    challenge = {"description": '`Bearer` (with `error="invalid_token"` for a refused token).', "schema": STRING}
    return {
        "E401": _error(
            "No API token, or one unknown, revoked or expired, or whose user is disabled.",
            **{"WWW-Authenticate": challenge},
        ),
        "E403": _error(
            "The caller's role does not allow this (e.g. publishing models and sharing datasets need the publisher "
            "role)."
        ),
    }


def secure(document: dict[str, Any]) -> dict[str, Any]:
    """Add the bearer scheme, require it everywhere but /health, and list 401 (and 403 where roles decide)."""
    document["security"] = [{"bearer": []}]
    document["components"]["securitySchemes"] = {"bearer": BEARER_SCHEME}
    document["components"]["responses"].update(security_responses())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path in PUBLIC_PATHS:
                operation["security"] = []
                continue
            operation["responses"]["401"] = {"$ref": "#/components/responses/E401"}
            if (path, method) in ROLE_CHECKED:
                operation["responses"]["403"] = {"$ref": "#/components/responses/E403"}
    return document
