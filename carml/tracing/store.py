"""A job's spans in the `spans` table: written in bulk with the rows they describe, read back for the API and page."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from carml.db.bulk import insert_rows, replace_rows
from carml.db.models import TraceSpan
from carml.db.session import session_scope
from carml.settings import Settings
from carml.tracing.export import export
from carml.tracing.records import SPAN_COLUMNS, SpanRecord

logger = logging.getLogger(__name__)


def save_spans(
    session: Session,
    job_id: str,
    records: Sequence[SpanRecord],
    *,
    otlp_endpoint: str,
    service: str,
    shard_index: int | None = None,
) -> None:
    """Add spans to the caller's transaction; they go to the OTLP collector only once it commits.

    With `shard_index`, the shard's earlier spans are deleted first: a redelivered shard leaves one copy.
    """
    session.flush()  # the job row the spans refer to, when it was added in this transaction
    rows = (record.row(job_id) for record in records)
    if shard_index is not None:
        of_shard = {"job_id": job_id, "shard_index": shard_index}
        replace_rows(session, TraceSpan.__table__, of_shard, SPAN_COLUMNS, rows)
    elif records:
        insert_rows(session, TraceSpan.__table__, SPAN_COLUMNS, rows)
    if otlp_endpoint and records:
        spans = list(records)
        event.listen(session, "after_commit", lambda _session: _export(otlp_endpoint, service, spans), once=True)


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
        query = (
            select(TraceSpan)
            .where(TraceSpan.job_id == job_id)
            .order_by(TraceSpan.started_at, TraceSpan.id)
            .limit(limit)
            .offset(offset)
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
