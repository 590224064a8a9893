"""Which evaluations count in the figures that combine everyone's runs: reports that aggregate (hardware_comparison,
model_leaderboard), recommendations, and the catalog's best measured results.

Results measured on catalog datasets and on shared datasets are the platform's benchmark data: they count for
every user, whoever ran them. Results on a private upload count only for the upload's owner (and admins):
otherwise the aggregates would show everyone the upload's name and the model's accuracy on it. An evaluation
whose upload was removed since (its `dataset_id` cleared, see `upload_removal`) counts for the job's owner only.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, or_, select

from carml.accounts.caller import Caller
from carml.db.models import Job, RegisteredDataset


def counted_evaluations(viewer: Caller | None) -> ColumnElement[bool] | None:
    """A condition on `jobs` keeping the evaluations whose results `viewer`'s aggregates may include; None (no
    condition) for an admin, or for no viewer at all: the operator's own tools, trusted with every row."""
    if viewer is None or viewer.is_admin:
        return None
    benchmark_or_own = select(RegisteredDataset.id).where(
        or_(
            RegisteredDataset.owner.is_(None),  # a catalog dataset, or one the operator's CLI read from a path
            RegisteredDataset.shared.is_(True),
            RegisteredDataset.owner == viewer.name,  # a bound parameter, like every value here
        )
    )
    return or_(
        Job.dataset_id.in_(benchmark_or_own),
        and_(Job.dataset_id.is_(None), Job.owner == viewer.name),
    )


def counted_job_ids(viewer: Caller | None) -> Select[tuple[str]] | None:
    """The same rule for a query that is not over `jobs` (a view with a `job_id` column): the ids it keeps."""
    condition = counted_evaluations(viewer)
    return None if condition is None else select(Job.id).where(condition)
