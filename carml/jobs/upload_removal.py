"""Removing an uploaded dataset: its rows and its object, once no queued or running job still reads it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update

from carml.accounts.access import check_may_remove_upload, may_use_dataset
from carml.accounts.caller import Caller
from carml.db.models import Job, JobStatus, RegisteredDataset
from carml.db.session import session_scope
from carml.jobs.uploads import KEY_PREFIX, UPLOAD_NAME, UploadError, upload_entry
from carml.publishing import service_catalog
from carml.settings import Settings
from carml.storage import open_object_store


def remove_upload(settings: Settings, name: str, caller: Caller) -> dict[str, Any]:
    """Remove the upload `name` as `caller` may (see `check_may_remove_upload`); returns what was removed.

    Finished jobs keep their dataset name, digest and results; only their link to the removed row is cleared."""
    if any(d.manifest.name == name for d in service_catalog(settings).datasets):
        raise UploadError(f"{name!r} is a catalog dataset: remove its manifest instead", field="name", status=409)
    unknown = UploadError(f"unknown dataset {name!r}", field="name", status=404)
    if not UPLOAD_NAME.fullmatch(name):
        raise unknown
    query = (
        select(RegisteredDataset)
        .where(RegisteredDataset.name == name, RegisteredDataset.object_key.is_not(None))
        .order_by(RegisteredDataset.id)
    )
    with session_scope(settings.database) as session:
        rows = list(session.scalars(query))
        # Someone else's private upload is answered as if it did not exist.
        if not rows or not may_use_dataset(caller, rows[0].owner, rows[0].shared):
            raise unknown
        check_may_remove_upload(caller, rows[0].owner, rows[0].shared)
        busy = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.dataset_name == name, Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))
        )
        if busy:
            raise UploadError(
                f"{busy} queued or running job(s) use {name!r}; cancel them or wait until they finish",
                field="name",
                status=409,
            )
        removed = upload_entry(rows[0])
        ids = [row.id for row in rows]
        session.execute(update(Job).where(Job.dataset_id.in_(ids)).values(dataset_id=None))
        session.execute(delete(RegisteredDataset).where(RegisteredDataset.id.in_(ids)))
    # NB: the rows go first: an object without a row is invisible garbage, a row without its object a broken job.
    open_object_store(settings).delete_prefix(f"{KEY_PREFIX}/{name}/")
    return removed
