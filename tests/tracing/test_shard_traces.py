"""Shards traced by the worker code, run in this process on SQLite: levels, operator spans, predictions, the cap."""

from __future__ import annotations

import dataclasses
import io
import tempfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select
from support import MANIFESTS

from carml.datasets.digits import load_digits_split
from carml.db.models import Job, JobShard, TraceSpan
from carml.db.session import session_scope
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.predictions import PredictionRequest, submit_prediction
from carml.jobs.service import EvaluationRequest, submit_evaluation
from carml.manifest.loader import load_model_manifest
from carml.settings import Settings
from carml.tracing.shard_trace import ShardTrace
from predictors.registry import predictor_classes

STAGES = ["fetch", "decode", "preprocess", "predict", "postprocess"]


WORKER_ID = "cpu-test@host"  # the live worker of the `settings` fixture's database


def _evaluate(settings: Settings, **request: Any) -> str:
    """Submit an evaluation of digits-cnn and run its one shard here, as a worker would."""
    job_id = submit_evaluation(settings, EvaluationRequest(model="digits-cnn", **request), lambda *_: None)
    assert run_shard(settings, job_id, 0, WORKER_ID, ModelCache()) == "succeeded"
    return job_id


def _spans(settings: Settings, job_id: str) -> list[TraceSpan]:
    with session_scope(settings.database) as session:
        query = (
            select(TraceSpan)
            .where(TraceSpan.job_id == job_id)
            .order_by(TraceSpan.started_at, TraceSpan.set_id, TraceSpan.position)
        )
        return list(session.scalars(query))


def _ancestors(span: TraceSpan, by_id: dict[str, TraceSpan]) -> list[str]:
    names = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        names.append(span.name)
    return names


def test_framework_level_gives_pytorch_operator_spans_under_predict(settings: Settings) -> None:
    job_id = _evaluate(
        settings, framework="pytorch", dataset="digits", limit=32, batch_size=16, trace_level="framework"
    )
    spans = _spans(settings, job_id)
    by_id = {s.span_id: s for s in spans}
    operators = [s for s in spans if s.attributes.get("operator")]
    predicts = [s for s in spans if s.name == "predict"]
    assert len(predicts) == 2 and operators
    assert {s.name for s in operators} >= {"aten::linear", "aten::relu"}
    for operator in operators:
        lineage = _ancestors(operator, by_id)
        assert lineage[-4:] == ["predict", "batch", "shard", "submit"], (operator.name, lineage)
        (predict,) = [p for p in predicts if p.batch_index == operator.batch_index]
        # torch's clock and ours agree to well under a millisecond: the operator sits inside its predict.
        assert predict.started_at.timestamp() - 1e-3 <= operator.started_at.timestamp()
        assert operator.started_at.timestamp() + operator.duration_ms / 1000 <= (
            predict.started_at.timestamp() + predict.duration_ms / 1000 + 1e-3
        )
    # Nested as torch nests them: aten::linear calls aten::addmm.
    assert any(_ancestors(s, by_id)[0] == "aten::linear" for s in operators if s.name == "aten::addmm")


def test_framework_level_gives_onnxruntime_kernels_under_model_run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    job_id = _evaluate(
        settings, framework="onnxruntime", dataset="digits", limit=48, batch_size=16, trace_level="framework"
    )
    spans = _spans(settings, job_id)
    by_id = {s.span_id: s for s in spans}
    runs = [s for s in spans if s.name == "model_run"]
    kernels = [s for s in spans if s.attributes.get("operator") and s.name != "model_run"]
    assert len(runs) == 3 and all(by_id[r.parent_span_id].name == "predict" for r in runs)
    assert {k.name for k in kernels} >= {"Conv", "Gemm"}
    assert all(by_id[k.parent_span_id].name == "model_run" and k.attributes["node"] for k in kernels)
    # The profiled session's files are gone once the shard ended.
    assert not list((tmp_path / "tmp").glob("carml-ort-profile-*"))


def test_a_framework_without_a_profiler_says_so_on_predict(settings: Settings) -> None:
    loaded = load_model_manifest(MANIFESTS / "models" / "digits-cnn-tensorflow.yaml")
    predictor = predictor_classes()["tensorflow"](loaded.manifest, Path("unused.keras"))
    job_id = submit_evaluation(
        settings,
        EvaluationRequest(
            model="digits-cnn", framework="tensorflow", dataset="digits", limit=8, trace_level="framework"
        ),
        lambda *_: None,
    )
    with session_scope(settings.database) as session:
        job = session.get(Job, job_id)
        shard = job.shards[0]
        shard.started_at = job.created_at
        trace = ShardTrace.begin(settings, job, shard, WORKER_ID)
        assert trace.predict_function(predictor) is None  # batches run on predictor.predict, unprofiled
        batch = {"size": 8, "warmup": False, "load": 1.0, "preprocess": 2.0, "predict": 3.0, "postprocess": 1.0}
        trace.save(session, [{**batch, "started": {"load": job.created_at.timestamp()}}])
    (predict,) = [s for s in _spans(settings, job_id) if s.name == "predict"]
    assert predict.attributes["operators"] == "not recorded: no operator profiler for tensorflow"


def test_level_none_by_default_writes_no_spans(settings: Settings) -> None:
    untraced = dataclasses.replace(settings, trace_level="none")
    job_id = _evaluate(untraced, framework="onnxruntime", dataset="digits", limit=16)
    with session_scope(settings.database) as session:
        job = session.get(Job, job_id)
        assert job.trace_id is None and job.parameters["trace_level"] == "none"
        assert "traceparent" not in job.parameters
    assert _spans(settings, job_id) == []


def test_the_span_cap_keeps_the_first_batches_and_counts_the_rest(settings: Settings) -> None:
    capped = dataclasses.replace(settings, trace_max_spans=20)
    job_id = _evaluate(capped, framework="onnxruntime", dataset="digits", limit=96, batch_size=16)
    spans = _spans(settings, job_id)
    worker_spans = [s for s in spans if s.name != "submit"]
    # queue, shard, load_model and store always; then whole batches of 6 spans while they fit in 20.
    assert len(worker_spans) == 4 + 2 * 6 <= 20
    assert {s.batch_index for s in spans if s.name == "batch"} == {0, 1}
    (shard,) = [s for s in spans if s.name == "shard"]
    assert shard.attributes["spans_dropped"] == 4 * 6 and shard.attributes["batches"] == 6


def test_a_prediction_job_is_traced_input_by_input(settings: Settings) -> None:
    png = io.BytesIO()
    Image.fromarray(load_digits_split("test")[0][0]).save(png, format="PNG")
    inputs = [("seven.png", png.getvalue()), ("broken.png", b"not an image")]
    request = PredictionRequest(model="digits-cnn", inputs=inputs, framework="onnxruntime")
    job_id = submit_prediction(settings, request, lambda *_: None)
    assert run_shard(settings, job_id, 0, WORKER_ID, ModelCache()) == "succeeded"
    spans = _spans(settings, job_id)
    by_id = {s.span_id: s for s in spans}
    batches = {s.attributes["item"]: s for s in spans if s.name == "batch"}
    assert set(batches) == {"seven.png", "broken.png"}
    stages = {item: [s.name for s in spans if s.parent_span_id == batch.span_id] for item, batch in batches.items()}
    assert stages["seven.png"] == STAGES
    assert stages["broken.png"] == ["fetch"]  # decoding failed: the trace shows how far it got
    assert {s.name for s in spans} >= {"submit", "queue", "shard", "store"}
    assert all(_ancestors(s, by_id)[-1] == "submit" for s in spans if s.name != "submit")


def test_a_shard_saved_twice_keeps_one_copy_of_its_spans(settings: Settings) -> None:
    job_id = submit_evaluation(
        settings, EvaluationRequest(model="digits-cnn", framework="onnxruntime", dataset="digits"), lambda *_: None
    )
    batch = {"size": 4, "warmup": False, "load": 1.0, "preprocess": 1.0, "predict": 1.0, "postprocess": 1.0}
    for attempt in (1, 2):  # a shard redelivered after its worker died reruns and saves again
        with session_scope(settings.database) as session:
            job = session.get(Job, job_id)
            shard = session.scalar(select(JobShard).where(JobShard.job_id == job_id))
            shard.attempts, shard.started_at = attempt, job.created_at
            trace = ShardTrace.begin(settings, job, shard, WORKER_ID)
            trace.save(session, [{**batch, "started": {"load": job.created_at.timestamp()}}])
    spans = [s for s in _spans(settings, job_id) if s.name != "submit"]
    assert sorted(s.name for s in spans) == sorted(["queue", "shard", "batch", *STAGES[:1], *STAGES[2:]])
    assert {s.attributes["attempt"] for s in spans} == {2}
