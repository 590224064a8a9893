"""Authentication of /api/v1: `Authorization: Bearer <token>` on every route but /api/v1/health.

The pages' own scripts poll the API from the browser with the login session instead; that is accepted for
safe methods (GET, HEAD) only, so a forged cross-site POST can never act with a visitor's cookie.
"""

from __future__ import annotations

from flask import Response, request

from carml.accounts import authenticate_token
from webapp.api.errors import error_response
from webapp.callers import session_caller, set_caller
from webapp.context import settings

PUBLIC_ENDPOINTS = frozenset({"health.health"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HOW_TO_GET_ONE = "create a token with `carml tokens create --user NAME` or on the Account page"


def unauthorized(message: str, invalid_token: bool = False) -> Response:
    """401 in the API's error shape, with the challenge RFC 6750 asks for."""
    response, status = error_response(message, 401, "Authorization")
    response.status_code = status
    challenge = 'Bearer realm="carml"' + (', error="invalid_token"' if invalid_token else "")
    response.headers["WWW-Authenticate"] = challenge
    return response


def authenticate_api_request(api_prefix: str) -> Response | None:
    """An app-wide before_request: set the caller of an /api/v1 request, or answer 401."""
    if not request.path.startswith(api_prefix + "/") or request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return unauthorized(f"the Authorization header must be 'Bearer <token>'; {HOW_TO_GET_ONE}")
        caller = authenticate_token(settings(), token.strip())
        if caller is None:
            return unauthorized("the token is unknown, revoked or expired, or its user is disabled", True)
        set_caller(caller)
        return None
    caller = session_caller() if request.method in _SAFE_METHODS else None
    if caller is None:
        return unauthorized(f"this endpoint needs an API token: send 'Authorization: Bearer <token>'; {HOW_TO_GET_ONE}")
    set_caller(caller)
    return None
