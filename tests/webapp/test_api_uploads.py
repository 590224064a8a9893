"""Uploading datasets: checked with the readers, stored and registered only when usable, then usable by name."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
from sqlalchemy import select
from support import TEST_USER

from carml.datasets.digits import load_digits_split
from carml.db.models import RegisteredDataset
from carml.db.session import session_scope
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.storage import open_object_store


def _upload(client, name: str, data: bytes, filename: str, **extra):
    form = {"name": name, "file": (io.BytesIO(data), filename), **extra}
    return client.post("/api/v1/datasets", data=form, content_type="multipart/form-data")


def _uploads(settings) -> tuple[list[str], list[str]]:
    """(object keys under datasets/, names of registered uploads): what an upload wrote."""
    with session_scope(settings.database) as session:
        rows = list(session.scalars(select(RegisteredDataset.name).where(RegisteredDataset.object_key.is_not(None))))
    return [info.key for info in open_object_store(settings).list("datasets/")], rows


def test_a_zip_of_class_folders_is_checked_stored_and_listed(client, settings, digits_zip) -> None:
    response = _upload(client, "my-digits", digits_zip(30, {"my-digits/3/notes.txt": b"hi"}), "My Digits.zip")
    assert response.status_code == 201, response.json
    report = response.json
    assert response.headers["Location"] == "/api/v1/datasets/my-digits"
    assert report["name"] == "my-digits" and report["format"] == "image-folder" and report["items"] == 30
    assert report["classes"] == [str(d) for d in range(10)]
    assert report["rejected"] == [{"item": "3/notes.txt", "reason": "not an image file (.txt)"}]
    keys, names = _uploads(settings)
    assert keys == [f"datasets/my-digits/{report['sha256']}/My_Digits.zip"] and names == ["my-digits"]
    listed = {d["name"]: d for d in client.get("/api/v1/datasets").json["datasets"]}
    assert listed["my-digits"]["source"] == "upload" and listed["my-digits"]["items"] == 30
    detail = client.get("/api/v1/datasets/my-digits").json
    assert detail["owner"] == TEST_USER and detail["filename"] == "My_Digits.zip"


def test_an_uploaded_dataset_is_evaluated_by_name(client, settings, digits_zip) -> None:
    assert _upload(client, "my-digits", digits_zip(24), "d.zip").status_code == 201
    job = client.post(
        "/api/v1/jobs",
        json={"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "my-digits"},
    ).json
    assert job["dataset"] == "my-digits" and job["progress"]["total"] == 24
    # The worker side opens it from the object store, through its own cache folder.
    worker_settings = replace(settings, cache_dir=settings.cache_dir.parent / "worker-cache")
    assert run_shard(worker_settings, job["id"], 0, "cpu-test@host", ModelCache()) == "succeeded"
    result = client.get(f"/api/v1/results/{job['id']}").json
    assert result["items"] == 24 and result["top1"] > 0.8
    sha256 = client.get("/api/v1/datasets/my-digits").json["sha256"]
    assert [p.name for p in (worker_settings.cache_dir / "uploads").iterdir()] == [sha256]


def test_a_csv_of_feature_columns(client) -> None:
    images, labels = load_digits_split("test")
    rows = ["label," + ",".join(f"p{i}" for i in range(64))]
    rows += [
        f"{label}," + ",".join(str(v) for v in image.reshape(-1))
        for image, label in zip(images[:20], labels[:20], strict=True)
    ]
    response = _upload(client, "digits_table", ("\n".join(rows) + "\n").encode(), "table.csv")
    assert response.status_code == 201, response.json
    assert response.json["format"] == "csv" and response.json["items"] == 20 and response.json["modality"] == "tensor"


def test_an_npz_upload(client) -> None:
    images, labels = load_digits_split("test")
    buffer = io.BytesIO()
    np.savez(buffer, x=images[:12], y=labels[:12])
    response = _upload(client, "arrays", buffer.getvalue(), "a.npz")
    assert response.status_code == 201 and response.json["items"] == 12


def test_unusable_uploads_write_nothing(client, settings) -> None:
    broken = _upload(client, "broken", b"PK\x03\x04 this is not a zip", "broken.zip")
    assert broken.status_code == 400 and broken.json["error"]["field"] == "file"
    assert "broken.zip" in broken.json["error"]["message"] and "/tmp" not in broken.json["error"]["message"]
    empty = _upload(client, "empty", b"label,x\n", "empty.csv")
    assert empty.status_code == 400 and empty.json["error"]["field"] == "file"
    wrong_kind = _upload(client, "words", b"hello", "words.txt")
    assert wrong_kind.status_code == 400 and ".zip" in wrong_kind.json["error"]["message"]
    assert _uploads(settings) == ([], [])


def test_names_are_checked(client, settings, digits_zip) -> None:
    data = digits_zip(10)
    clash = _upload(client, "digits-png", data, "d.zip")
    assert clash.status_code == 409 and clash.json["error"]["field"] == "name"
    for bad in ("My Digits", "x.csv", "../up", "", "mine\n"):
        response = _upload(client, bad, data, "d.zip")
        assert response.status_code == 400 and response.json["error"]["field"] == "name", bad
    extra = _upload(client, "fine", data, "d.zip", colour="red")
    assert extra.status_code == 400 and extra.json["error"]["field"] == "colour"
    assert _uploads(settings) == ([], [])
    missing = client.post("/api/v1/datasets", data={"name": "fine"}, content_type="multipart/form-data")
    assert missing.status_code == 400 and missing.json["error"]["field"] == "file"


def test_uploads_are_immutable(client, settings, digits_zip) -> None:
    assert _upload(client, "mine", digits_zip(10), "d.zip").status_code == 201
    same = _upload(client, "mine", digits_zip(10), "again.zip")
    assert same.status_code == 201 and same.json["items"] == 10
    other = _upload(client, "mine", digits_zip(12), "d.zip")
    assert other.status_code == 409 and other.json["error"]["field"] == "name"
    keys, names = _uploads(settings)
    assert len(keys) == 1 and names == ["mine"]


def test_too_large_an_upload_is_a_413(app, client, settings, digits_zip) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = _upload(client, "big", digits_zip(30), "d.zip")
    assert response.status_code == 413
    assert response.json["error"]["status"] == 413 and "limit" in response.json["error"]["message"]
    assert _uploads(settings) == ([], [])


def test_a_refused_archive_leaves_nothing_in_the_artifact_cache(client, settings, tmp_path) -> None:
    import io
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("cats/notes.txt", "x" * 100_000)  # unpacks fine, but holds no usable item
    response = client.post(
        "/api/v1/datasets",
        data={"name": "no-images", "file": (io.BytesIO(archive.getvalue()), "no-images.zip")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    unpacked = settings.cache_dir / "unpacked"
    assert not unpacked.exists() or not any(p.is_file() for p in unpacked.rglob("*"))
