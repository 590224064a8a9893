"""Throttling web logins: too many recent failures for one user name, or from one address, refuse the next try.

Each attempt is recorded as a failure *before* its password is checked, and the failures are counted with it
included: requests sent in parallel each see the others, so no burst gets more than the limit of password checks.
An attempt refused by the throttle takes its row back (a refusal is not a failure); a success clears every
failure of its name; a wrong password keeps its row. Names are counted whether or not a user has them, so the
throttle never tells a known name from an unknown one. Rows older than the window are pruned as new ones are
written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from carml.accounts.errors import AccountError
from carml.accounts.users import USER_NAME
from carml.db.base import utcnow
from carml.db.models import LoginFailure
from carml.db.session import session_scope
from carml.settings import Settings

# Column widths of login_failures: a longer value is cut to fit (it still counts, under its first characters).
_NAME_WIDTH = 100
_ADDRESS_WIDTH = 64
#: The bucket of every name that cannot be a user's (see `name_key`).
NOT_A_USER_NAME = "(not a user name)"


class LoginThrottled(AccountError):
    """A login refused before its password was checked; `retry_after_s` says when one may be tried again."""

    def __init__(self, retry_after_s: int):
        minutes = math.ceil(retry_after_s / 60)
        super().__init__(
            "Too many failed logins for this user name or from this address. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            status=429,
        )
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class LoginAttempt:
    """An attempt let through to the password check; its row is already counted as a failure."""

    failure_id: int
    user_name: str


def name_key(name: str) -> str:
    """The name failures are counted under. A name no user can have (a NUL, upper case, too long) can never log
    in, and PostgreSQL refuses some of those characters: all of them share one bucket, and the address limit
    covers whoever sends them."""
    return name if USER_NAME.match(name) else NOT_A_USER_NAME


def begin_login_attempt(settings: Settings, name: str, remote_addr: str) -> LoginAttempt:
    """Record the attempt as a failure, then refuse it (`LoginThrottled`) when its name or address is over the
    limit; otherwise the caller checks the password and calls `login_succeeded` if it matches."""
    user_name, address = name_key(name)[:_NAME_WIDTH], remote_addr[:_ADDRESS_WIDTH]
    now = utcnow()
    window = timedelta(seconds=settings.login_window_s)
    with session_scope(settings.database) as session:
        session.execute(delete(LoginFailure).where(LoginFailure.failed_at < now - window))
        row = LoginFailure(user_name=user_name, remote_addr=address, failed_at=now)
        session.add(row)
        session.flush()
        failure_id = row.id
    # NB: counted in a transaction of its own, after the insert committed, so it sees every parallel attempt's row.
    with session_scope(settings.database) as session:
        since = utcnow() - window
        limits = (
            (LoginFailure.user_name == user_name, settings.login_max_failures_per_name),
            (LoginFailure.remote_addr == address, settings.login_max_failures_per_address),
        )
        waits = [wait for match, limit in limits if (wait := _wait_s(session, match, limit, since, window, failure_id))]
        if waits:
            session.execute(delete(LoginFailure).where(LoginFailure.id == failure_id))
    if waits:  # NB: raised once the row's removal is committed (an error inside session_scope rolls back)
        raise LoginThrottled(max(waits))
    return LoginAttempt(failure_id, user_name)


def login_succeeded(settings: Settings, attempt: LoginAttempt) -> None:
    """The password matched: every failure of that name is forgiven (its own row included)."""
    with session_scope(settings.database) as session:
        session.execute(delete(LoginFailure).where(LoginFailure.user_name == attempt.user_name))


def _wait_s(
    session: Session, match: ColumnElement[bool], limit: int, since: datetime, window: timedelta, own_id: int
) -> int | None:
    """None when the failures matching `match` since `since` (this attempt's own included) are within `limit`;
    otherwise the seconds until enough of the earlier ones have left the window for one more attempt."""
    counted = session.scalar(select(func.count()).where(match, LoginFailure.failed_at >= since)) or 0
    if counted <= limit:
        return None
    # The next attempt is let through once at most `limit - 1` earlier failures remain (it makes `limit`): the
    # oldest `earlier - limit + 1` must leave the window, the last of them at offset `earlier - limit`.
    earlier = counted - 1
    expiring = session.scalar(
        select(LoginFailure.failed_at)
        .where(match, LoginFailure.failed_at >= since, LoginFailure.id != own_id)
        .order_by(LoginFailure.failed_at, LoginFailure.id)
        .offset(max(earlier - limit, 0))
        .limit(1)
    )
    if expiring is None:  # pruned in between: the window has already moved on
        return 1
    return max(1, math.ceil((expiring + window - utcnow()).total_seconds()))
