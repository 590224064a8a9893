"""Where a prediction keeps its inputs and answers: small inputs in the job's row, big ones in the object store, the
answers in the result row only; the outputs download and the CSV serve them all the same."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from carml.datasets.digits import load_digits_split
from carml.db.models import OutputObject
from carml.db.session import session_scope
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.prediction_io import INLINE_INPUT_BYTES, keep_inputs
from carml.jobs.service import get_job
from carml.storage import StorageError, open_object_store
from carml.zoo.digits_png import encode_png_gray

WORKER_ID = "cpu-test@host"  # registered by the settings fixture (tests/webapp/conftest.py)


def _digits(*indexes: int) -> list[tuple[bytes, str]]:
    images, labels = load_digits_split("test")
    return [(encode_png_gray(np.asarray(images[i], dtype=np.uint8)), str(labels[i])) for i in indexes]


def _noise_png(side: int) -> bytes:
    """A PNG that does not compress: `side` x `side` RGB noise."""
    pixels = np.random.default_rng(7).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _predict(client, files: list[tuple[bytes, str]]) -> str:
    form = {"kind": "predict", "model": "digits-cnn", "framework": "onnxruntime"}
    form["files"] = [(io.BytesIO(data), name) for data, name in files]
    response = client.post("/api/v1/jobs", data=form)
    assert response.status_code == 201, response.json
    return response.json["id"]


def _output_objects(settings, job_id: str) -> int:
    with session_scope(settings.database) as session:
        return session.scalar(select(func.count()).select_from(OutputObject).where(OutputObject.job_id == job_id))


def test_small_inputs_and_the_answers_stay_in_the_database(client, settings) -> None:
    digits = _digits(0, 1)
    job_id = _predict(client, [(png, f"{i}.png") for i, (png, _) in enumerate(digits)])
    entries = get_job(settings, job_id).parameters["inputs"]
    assert [base64.b64decode(e["data"]) for e in entries] == [png for png, _ in digits]

    assert run_shard(settings, job_id, 0, WORKER_ID, ModelCache()) == "succeeded"
    answers = client.get(f"/api/v1/jobs/{job_id}").json["result"]["predictions"]
    assert [a["outputs"]["logits"]["top_k"][0]["label"] for a in answers] == [label for _, label in digits]
    # Nothing went through the object store: no input, no outputs object.
    assert open_object_store(settings).list(f"jobs/{job_id}/") == [] and _output_objects(settings, job_id) == 0

    outputs = client.get(f"/api/v1/results/{job_id}/outputs")
    assert outputs.status_code == 200 and outputs.mimetype == "application/x-ndjson"
    assert outputs.headers["Content-Disposition"] == f'attachment; filename="{job_id}.jsonl"'
    assert [json.loads(line) for line in outputs.get_data(as_text=True).splitlines()] == answers
    rows = list(csv.DictReader(io.StringIO(client.get(f"/jobs/{job_id}/predictions.csv").get_data(as_text=True))))
    assert [(r["item"], r["top1_label"]) for r in rows] == [("0.png", digits[0][1]), ("1.png", digits[1][1])]
    picture = client.get(f"/jobs/{job_id}/inputs/1")
    assert picture.status_code == 200 and picture.data == digits[1][0]


def test_big_inputs_go_to_the_object_store_and_are_read_back_from_it(client, settings) -> None:
    big = _noise_png(200)
    assert len(big) > INLINE_INPUT_BYTES
    ((small, _),) = _digits(2)
    job_id = _predict(client, [(small, "small.png"), (big, "big.png")])
    entries = get_job(settings, job_id).parameters["inputs"]
    assert [e["key"] for e in entries] == [f"jobs/{job_id}/inputs/000-small.png", f"jobs/{job_id}/inputs/001-big.png"]
    assert open_object_store(settings).get_bytes(entries[1]["key"]) == big

    assert run_shard(settings, job_id, 0, WORKER_ID, ModelCache()) == "succeeded"
    answers = client.get(f"/api/v1/jobs/{job_id}").json["result"]["predictions"]
    assert [a["item"] for a in answers] == ["small.png", "big.png"] and all("error" not in a for a in answers)
    assert client.get(f"/jobs/{job_id}/inputs/1").data == big


def test_a_job_from_before_is_still_served_from_its_outputs_object(client, settings) -> None:
    # A prediction job recorded before the answers stayed in the database only: an `output_objects` row and its
    # JSON Lines object in the store. Both downloads serve that object, not the result row.
    digits = _digits(4, 5)
    job_id = _predict(client, [(png, f"{i}.png") for i, (png, _) in enumerate(digits)])
    assert run_shard(settings, job_id, 0, WORKER_ID, ModelCache()) == "succeeded"
    answers = client.get(f"/api/v1/jobs/{job_id}").json["result"]["predictions"]
    stored = answers[:1]  # so that what is served shows where it came from
    body = b"".join(json.dumps(a).encode() + b"\n" for a in stored)
    store = open_object_store(settings)
    info = store.put_bytes(f"jobs/{job_id}/outputs/shard-0000.jsonl", body)
    with session_scope(settings.database) as session:
        session.add(
            OutputObject(job_id=job_id, shard_index=0, key=info.key, items=1, size_bytes=info.size, sha256=info.sha256)
        )

    outputs = client.get(f"/api/v1/results/{job_id}/outputs")
    assert outputs.status_code == 200 and outputs.data == body
    rows = list(csv.DictReader(io.StringIO(client.get(f"/jobs/{job_id}/predictions.csv").get_data(as_text=True))))
    assert [(r["item"], r["top1_label"]) for r in rows] == [("0.png", digits[0][1])]

    store.delete_prefix(f"jobs/{job_id}/outputs/")  # the object lost: an error, not an empty answer
    missing = client.get(f"/api/v1/results/{job_id}/outputs")
    assert missing.status_code == 404 and "missing from the object store" in missing.json["error"]["message"]
    assert client.get(f"/jobs/{job_id}/predictions.csv").status_code == 404


def test_inputs_put_in_the_store_before_a_failure_are_removed(settings) -> None:
    big = _noise_png(200)
    store = open_object_store(settings)
    job_id = "00000000-0000-4000-8000-0000000000aa"
    # The second input's object cannot be written: a folder stands where its file would go.
    (Path(settings.object_store) / f"jobs/{job_id}/inputs/001-b.png").mkdir(parents=True)
    with pytest.raises(StorageError):
        keep_inputs(store, job_id, [("a.png", big), ("b.png", big)])
    assert store.list(f"jobs/{job_id}/inputs/") == []  # the first one is gone again
