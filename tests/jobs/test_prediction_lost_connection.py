"""Prediction jobs on PostgreSQL while connections drop: the claim and the final write ride out connections that
the server ends (as in a restart), and a final write whose COMMIT answer is lost, retried, records one result; the
job's end is announced with the summary that a read of the job returns."""

from __future__ import annotations

import io
import json

from db_faults import commit_answer_lost_once, connection_killed_before
from PIL import Image
from sqlalchemy import func, select

from carml.datasets.digits import load_digits_split
from carml.db.models import JobStatus, Result
from carml.db.session import session_scope
from carml.jobs import claim, execution
from carml.jobs.model_cache import ModelCache
from carml.jobs.predictions import PredictionRequest, run_prediction, submit_prediction
from carml.jobs.service import get_job
from carml.settings import Settings

WORKER = "cpu-test@host"  # registered by the `settings` fixture (tests/jobs/conftest.py)


def _digit(index: int) -> bytes:
    images, _ = load_digits_split("test")
    png = io.BytesIO()
    Image.fromarray(images[index]).save(png, format="PNG")
    return png.getvalue()


def _submit(settings: Settings) -> str:
    inputs = [("first.png", _digit(0)), ("second.png", _digit(1))]
    request = PredictionRequest(model="digits-cnn", framework="onnxruntime", inputs=inputs)
    return submit_prediction(settings, request, lambda *_: None)


def _results(settings: Settings, job_id: str) -> int:
    with session_scope(settings.database) as session:
        return session.scalar(select(func.count()).select_from(Result).where(Result.job_id == job_id)) or 0


def _assert_one_success(settings: Settings, job_id: str) -> None:
    job = get_job(settings, job_id)
    assert job.status == JobStatus.SUCCEEDED and job.error is None, job.error
    assert (job.progress_done, job.shards_finished, job.shards[0].attempts) == (2, 1, 1)
    assert job.result is not None and job.result.items == 2 and job.result.errors == 0
    assert _results(settings, job_id) == 1


def test_a_prediction_rides_out_connections_ended_at_its_claim_and_its_final_write(settings: Settings) -> None:
    job_id = _submit(settings)
    url = settings.database
    # The claim (on PostgreSQL one statement, the job's UPDATE in its WITH) and the final write's INSERT of the result
    # meet dead connections.
    with (
        connection_killed_before(url, "WITH claimed_job", times=1) as at_claim,
        connection_killed_before(url, "INSERT INTO results", times=2) as at_finish,
    ):
        assert execution.run_shard(settings, job_id, 0, WORKER, ModelCache()) == JobStatus.SUCCEEDED
    assert (len(at_claim), len(at_finish)) == (1, 2)
    _assert_one_success(settings, job_id)


def test_a_final_write_whose_commit_answer_was_lost_records_one_result(settings: Settings) -> None:
    job_id = _submit(settings)
    claimed = claim.start_shard(settings, job_id, 0, WORKER)
    assert claimed is not None
    job, _, digest = claimed
    with commit_answer_lost_once(settings.database, after="INSERT INTO results") as lost:
        run_prediction(settings, job, WORKER, ModelCache(), digest)  # the retry finds the shard already ended
    assert lost == [True]
    _assert_one_success(settings, job_id)


def test_the_end_of_a_prediction_is_announced_with_the_summary_a_read_returns(settings: Settings, monkeypatch) -> None:
    from carml.jobs import predictions
    from carml.jobs.summary import job_summary

    announced: list[tuple[str, dict | None]] = []
    monkeypatch.setattr(
        predictions, "announce_job_end", lambda _s, job_id, summary=None: announced.append((job_id, summary))
    )
    job_id = _submit(settings)
    assert execution.run_shard(settings, job_id, 0, WORKER, ModelCache()) == JobStatus.SUCCEEDED
    assert [job_id for job_id, _ in announced] == [job_id]
    summary = announced[0][1]
    assert summary is not None and summary["status"] == JobStatus.SUCCEEDED
    # What a waiting request would otherwise read, to the order of keys in the stored JSON (which the API keeps).
    assert json.dumps(summary) == json.dumps(job_summary(get_job(settings, job_id)))
    _, labels = load_digits_split("test")
    top1 = [p["outputs"]["logits"]["top_k"][0]["label"] for p in summary["result"]["predictions"]]
    assert top1 == [str(labels[0]), str(labels[1])]  # the digits-cnn model gets these two right
