"""A job's spans: written a set at a time with the rows they describe, read back through the `spans` view for the API
and page."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, event, func, insert, select
from sqlalchemy.orm import Session

from carml.db.driver_statements import DriverStatement
from carml.db.models import SpanSet, TraceSpan
from carml.db.session import session_scope
from carml.settings import Settings
from carml.tracing.export import export
from carml.tracing.records import SpanRecord

logger = logging.getLogger(__name__)


def save_spans(
    session: Session,
    job_id: str,
    records: Sequence[SpanRecord],
    *,
    otlp_endpoint: str,
    service: str,
    replace: bool = False,
) -> None:
    """Add spans recorded together (one shard's, or the submitter's) to the caller's transaction as one `SpanSet`;
    they go to the OTLP collector only once it commits.

    With `replace`, the set the same shard saved before is deleted first: a redelivered shard leaves one copy.
    """
    if not records:
        return
    first = records[0]
    session.flush()  # the job row the spans refer to, when it was added in this transaction
    spans = [record.stored() for record in records]
    # NB: no None values: the `spans` view's merge on SQLite (json_patch) would drop the key (see SpanSet).
    shared = {key: value for key, value in first.shared.items() if value is not None}
    values = {"job_id": job_id, "trace_id": first.trace_id, "shard_index": first.shard_index}
    _statements().add(session, {**values, "attributes": shared, "spans": spans}, replace)
    if otlp_endpoint:
        listed = list(records)
        event.listen(session, "after_commit", lambda _session: _export(otlp_endpoint, service, listed), once=True)


@dataclass(frozen=True)
class _Statements:
    insert: DriverStatement
    delete_shard: DriverStatement
    replace: DriverStatement  # the delete and the insert in one statement (PostgreSQL)

    def add(self, session: Session, values: dict[str, Any], replace: bool) -> None:
        if not replace:
            self.insert.execute(session, values)
        elif session.get_bind().dialect.name == "postgresql":
            self.replace.execute(session, values)
        else:  # SQLite: no DELETE in a WITH; its statements cost no round trip anyway
            self.delete_shard.execute(session, values)
            self.insert.execute(session, values)


@functools.cache
def _statements() -> _Statements:
    # NB: on the driver's cursor: SQLAlchemy's own execution of these costs more than their round trips.
    table = SpanSet.__table__
    names = ("job_id", "trace_id", "shard_index", "attributes", "spans")
    add = insert(table).values({name: bindparam(name) for name in names})
    delete_shard = delete(table).where(
        (table.c.job_id == bindparam("job_id")) & (table.c.shard_index == bindparam("shard_index"))
    )
    return _Statements(
        insert=DriverStatement(add),
        delete_shard=DriverStatement(delete_shard),
        replace=DriverStatement(add.add_cte(delete_shard.cte("replaced"))),
    )


def _export(endpoint: str, service: str, spans: list[SpanRecord]) -> None:
    # NB: this runs inside the commit of the job's rows: the collector's copy must never fail the job.
    try:
        export(endpoint, service, spans)
    except Exception:
        logger.warning("could not queue %d spans for %s", len(spans), endpoint, exc_info=True)


def span_json(span: TraceSpan) -> dict[str, Any]:
    return {
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "shard_index": span.shard_index,
        "batch_index": span.batch_index,
        "started_at": span.started_at.isoformat(),
        "duration_ms": span.duration_ms,
        "attributes": span.attributes,
    }


def read_spans(settings: Settings, job_id: str, limit: int, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """How many spans the job's trace has, and a page of them in the order they started."""
    with session_scope(settings.database) as session:
        total = session.scalar(select(func.count()).select_from(TraceSpan).where(TraceSpan.job_id == job_id)) or 0
        # NB: the page's keys first, then its rows: ordered and cut on the keys alone, the view unpacks every span of
        # the job but builds the rest of a row (its merged attributes above all) only for the page. A page of a
        # 108,000-span trace on PostgreSQL: 320 against 925 ms.
        order = (TraceSpan.started_at, TraceSpan.set_id, TraceSpan.position)
        page = select(*order).where(TraceSpan.job_id == job_id).order_by(*order).limit(limit).offset(offset).subquery()
        query = (
            select(TraceSpan)
            .join(page, (TraceSpan.set_id == page.c.set_id) & (TraceSpan.position == page.c.position))
            .where(TraceSpan.job_id == job_id)
            .order_by(page.c.started_at, page.c.set_id, page.c.position)
        )
        return total, [span_json(span) for span in session.scalars(query)]


def span_totals(settings: Settings, job_id: str) -> list[dict[str, Any]]:
    """Per span name: how many spans, and their total and mean milliseconds (longest total first)."""
    total = func.sum(TraceSpan.duration_ms)
    query = (
        select(TraceSpan.name, func.count(), total)
        .where(TraceSpan.job_id == job_id)
        .group_by(TraceSpan.name)
        .order_by(total.desc(), TraceSpan.name)
    )
    with session_scope(settings.database) as session:
        return [
            {"name": name, "count": count, "total_ms": float(ms or 0.0), "mean_ms": float(ms or 0.0) / count}
            for name, count, ms in session.execute(query)
        ]
