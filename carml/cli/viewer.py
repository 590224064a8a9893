"""Whose view the CLI's shared figures show (`carml report`, `carml recommend`): `CARML_USER`'s.

When `CARML_USER` names a user, the command shows what the web app would show that user: their own jobs in
per-job reports, and aggregates without other users' private uploads. When it names nobody (the default `admin`
before `carml up` made that user, say), the command acts as the operator, as the CLI's other database commands
do, and shows every row: whoever holds the database URL can read all of it anyway, so this is a convenience for
people sharing a machine, not a security boundary.
"""

from __future__ import annotations

from carml.accounts.caller import Caller
from carml.accounts.users import caller_named
from carml.settings import Settings


def cli_viewer(settings: Settings) -> Caller | None:
    """The caller `CARML_USER` names, or None (every row) when no user has that name."""
    return caller_named(settings, settings.user)
