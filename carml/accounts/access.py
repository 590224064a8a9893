"""Who may see what: the rules every front end applies to owners, shared datasets and list filters."""

from __future__ import annotations

from carml.accounts.caller import Caller
from carml.accounts.errors import AccountError


def list_owner(caller: Caller, requested: str | None) -> str | None:
    """The owner a list is filtered on: any (or all, None) for an admin, always the caller's own otherwise."""
    if caller.is_admin:
        return requested
    if requested is not None and requested != caller.name:
        raise AccountError("only admins may list other users' work; leave owner out", field="owner", status=403)
    return caller.name


def may_read(caller: Caller, owner: str | None) -> bool:
    """Jobs, results, outputs, traces and comparisons: their owner's and every admin's."""
    return caller.owns(owner)


def may_use_dataset(caller: Caller, owner: str | None, shared: bool) -> bool:
    """An uploaded dataset: its owner's, every admin's, and everyone's once shared."""
    return shared or caller.owns(owner)


def check_may_remove_upload(caller: Caller, owner: str | None, shared: bool) -> None:
    """A private upload may be removed by its owner (or an admin); a shared one only by a publisher or admin."""
    if shared and not caller.can_publish:
        raise AccountError("removing a shared dataset needs the publisher role", field="name", status=403)
    if not shared and not caller.owns(owner):
        raise AccountError("only its owner or an admin may remove this dataset", field="name", status=403)


def check_may_publish(caller: Caller, action: str) -> None:
    """Publishing, replacing or removing a model needs the publisher role (admins have it too); `action` words
    what was refused, e.g. "publishing a model"."""
    if not caller.can_publish:
        raise AccountError(f"{action} needs the publisher role; {caller.name} has the role {caller.role}", status=403)
