"""Accounts and access: users with roles, hashed API tokens, and the `Caller` every request acts as.

No web framework here: the CLI, the REST API and the web pages all authenticate through these functions.
"""

from carml.accounts.caller import Caller
from carml.accounts.errors import AccountError
from carml.accounts.first_admin import FirstAdmin, ensure_first_admin
from carml.accounts.tokens import (
    TokenInfo,
    authenticate_token,
    create_token,
    list_tokens,
    revoke_token,
)
from carml.accounts.users import (
    UserInfo,
    caller_for_user_id,
    count_users,
    create_user,
    disable_user,
    get_user,
    list_users,
    parse_role,
    verify_password,
)

__all__ = [
    "AccountError",
    "Caller",
    "FirstAdmin",
    "TokenInfo",
    "UserInfo",
    "authenticate_token",
    "caller_for_user_id",
    "count_users",
    "create_token",
    "create_user",
    "disable_user",
    "ensure_first_admin",
    "get_user",
    "list_tokens",
    "list_users",
    "parse_role",
    "revoke_token",
    "verify_password",
]
