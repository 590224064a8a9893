"""A finished job's page: accuracy against the claim, charts data, downloads; and each kind of prediction."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np


def test_a_finished_evaluation_page(client, finished_evaluation) -> None:
    html = client.get(f"/jobs/{finished_evaluation}").get_data(as_text=True)
    result = client.get(f"/api/v1/results/{finished_evaluation}").json
    section = re.search(r'<section id="job"[^>]*>', html).group(0)
    assert 'data-final="true"' in section and 'data-status="succeeded"' in section
    assert f'data-charts-url="/jobs/{finished_evaluation}/charts.json"' in section
    for element in ("confusion-chart", "latency-chart", "stages-chart", "per-class-table", "reproducibility-table"):
        assert f'id="{element}"' in html, element
    assert f"{result['top1'] * 100:.1f} %" in html and "98.3 %" in html  # measured and claimed top-1
    assert html.count('<tr data-label="') == 10
    assert f'href="/api/v1/results/{finished_evaluation}/outputs"' in html
    assert f'href="/jobs/{finished_evaluation}/predictions.csv"' in html
    assert 'data-key="manifest_sha256"' in html and 'id="no-errors"' in html


def test_charts_json_has_the_histogram_confusion_matrix_and_stages(client, finished_evaluation) -> None:
    response = client.get(f"/jobs/{finished_evaluation}/charts.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    charts = response.json
    result = client.get(f"/api/v1/results/{finished_evaluation}").json
    latency = charts["latency"]
    # 48 items in 2 shards of 24, batches of 8: 3 batches per shard, the first of each is warm-up.
    assert sum(latency["counts"]) == latency["count"] == 4 and latency["warmup_excluded"] == 2
    assert len(latency["edges"]) == len(latency["counts"]) + 1
    assert latency["edges"] == sorted(latency["edges"])
    for mark in ("p50", "p90", "p99"):
        assert np.isclose(latency[mark], result["latency_ms"][mark]), mark
        assert latency["edges"][0] <= latency[mark] <= latency["edges"][-1]
    confusion = charts["confusion"]
    assert confusion["labels"] == [str(d) for d in range(10)]
    drawn = {(cell["y"], cell["x"]): cell["v"] for cell in confusion["cells"]}
    matrix = result["confusion_matrix"]
    assert drawn == {(str(t), str(p)): matrix[t][p] for t in range(10) for p in range(10)}
    assert sum(drawn.values()) == 48 and len(confusion["cells"]) == 100
    assert charts["stages"]["stages"] == ["load", "preprocess", "predict", "postprocess"]
    assert np.isclose(charts["stages"]["p50"][2], result["stages_ms"]["predict"]["p50"])


def test_charts_json_of_a_queued_job_is_empty(client, evaluate) -> None:
    charts = client.get(f"/jobs/{evaluate()}/charts.json").json
    assert charts["status"] == "queued" and charts["latency"] is None and charts["confusion"] is None
    assert client.get("/jobs/00000000-0000-0000-0000-000000000000/charts.json").status_code == 404


def test_the_csv_has_one_row_per_item(client, finished_evaluation) -> None:
    response = client.get(f"/jobs/{finished_evaluation}/predictions.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{finished_evaluation}.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    jsonl = [
        json.loads(line) for line in client.get(f"/api/v1/results/{finished_evaluation}/outputs").data.splitlines()
    ]
    assert len(rows) == len(jsonl) == 48
    assert list(rows[0]) == ["item", "top1_label", "score", "true_class", "error"]
    for row, line in zip(rows, jsonl, strict=True):
        best = line["outputs"]["logits"]["top_k"][0]
        assert row["item"] == line["item"] and row["top1_label"] == best["label"]
        assert float(row["score"]) == best["score"] and row["true_class"] == str(line["true_class"])
    top1 = client.get(f"/api/v1/results/{finished_evaluation}").json["top1"]
    assert sum(r["top1_label"] == r["true_class"] for r in rows) == round(top1 * 48)


def test_the_csv_is_404_until_the_job_succeeds(client, evaluate) -> None:
    response = client.get(f"/jobs/{evaluate()}/predictions.csv")
    assert response.status_code == 404 and "it is queued" in response.get_data(as_text=True)


def test_a_classification_prediction_page(client, predict) -> None:
    job_id = predict("digits-cnn", "digit-3.png")
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'class="prediction" data-item="digit-3.png"' in html and 'class="topk-bars"' in html
    first = re.search(r'<li data-label="([^"]+)" data-score="([^"]+)">', html)
    assert first and first.group(1) == "3" and float(first.group(2)) > 0.5
    assert f'src="/jobs/{job_id}/inputs/0"' in html and 'id="prediction-worker"' in html
    image = client.get(f"/jobs/{job_id}/inputs/0")
    assert image.status_code == 200 and image.mimetype == "image/png" and image.data.startswith(b"\x89PNG")
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"/jobs/{job_id}/inputs/1").status_code == 404
    rows = list(csv.DictReader(io.StringIO(client.get(f"/jobs/{job_id}/predictions.csv").get_data(as_text=True))))
    assert [(r["item"], r["top1_label"], r["true_class"]) for r in rows] == [("digit-3.png", "3", "")]


def test_a_detection_prediction_draws_boxes_over_the_image(client, predict) -> None:
    job_id = predict("nudenet-detector", "astronaut.jpg")
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    answer = client.get(f"/api/v1/jobs/{job_id}").json["result"]["predictions"][0]
    detections = answer["outputs"]["output0"]["detections"]
    svg = re.search(r'<svg class="detections" viewBox="0 0 (\d+) (\d+)"', html)
    assert svg and (int(svg.group(1)), int(svg.group(2))) == (512, 512)
    assert html.count('<g class="box"') == len(detections) > 0
    assert f'<image href="/jobs/{job_id}/inputs/0"' in html


def test_a_speech_prediction_shows_segments_on_a_timeline(client, predict) -> None:
    job_id = predict("silero-vad", "speech.wav")
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    answer = client.get(f"/api/v1/jobs/{job_id}").json["result"]["predictions"][0]
    segments = answer["outputs"]["speech_probs"]["segments"]
    assert html.count('<span class="segment"') == len(segments) > 0
    duration = float(re.search(r'<div class="timeline" data-duration="([0-9.]+)"', html).group(1))
    assert duration >= segments[-1]["end_s"]
    assert f'<audio controls preload="none" src="/jobs/{job_id}/inputs/0">' in html
    audio = client.get(f"/jobs/{job_id}/inputs/0")
    assert audio.status_code == 200 and audio.mimetype.startswith("audio/")


def test_inputs_that_are_not_media_are_only_downloads(client, token) -> None:
    page = b"<script>alert(1)</script>"
    form = {"csrf_token": token, "model": "digits-cnn", "framework": "onnxruntime", "hardware_tag": "cpu"}
    response = client.post("/try", data={**form, "file": (io.BytesIO(page), "x.html")})
    job_id = response.headers["Location"].rsplit("/", 1)[-1]
    served = client.get(f"/jobs/{job_id}/inputs/0")
    assert served.status_code == 200 and served.mimetype == "application/octet-stream"
    assert (
        served.headers["Content-Disposition"] == "attachment" and "sandbox" in served.headers["Content-Security-Policy"]
    )


def test_a_model_with_a_thousand_classes_gets_a_page_of_readable_size(client, settings, finished_evaluation) -> None:
    from sqlalchemy import update

    from carml.db.models import Result
    from carml.db.session import session_scope

    labels = [f"class-{i}" for i in range(1000)]
    per_class = [{"label": label, "support": 1, "precision": None, "recall": 0.0} for label in labels]
    cells = [[i, (i * 7) % 1000, 1 + i % 3] for i in range(1000)]  # one mistake or hit per true class
    metrics = {"labels": labels, "per_class": per_class, "warmup": {}, "timed_items": 1000}
    with session_scope(settings.database) as session:  # as a 1,000-class evaluation's result keeps them
        where = Result.job_id == finished_evaluation
        session.execute(
            update(Result).where(where).values(metrics={**metrics, "confusion": {"classes": 1000, "cells": cells}})
        )
    page = client.get(f"/jobs/{finished_evaluation}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and len(html) < 1_000_000, len(html)  # not a million-cell table
    assert 'id="confusion-table"' not in html and 'id="top-confusions-table"' in html
    mistakes = re.findall(r"<tr><td>(class-\d+)</td><td>(class-\d+)</td><td class=\"num\">(\d+)</td></tr>", html)
    assert len(mistakes) == 25 and all(count == "3" for _, _, count in mistakes)  # the most frequent first
    assert ("class-2", "class-14", "3") in mistakes
    charts = client.get(f"/jobs/{finished_evaluation}/charts.json").json
    assert len(charts["confusion"]["cells"]) == 1000 and len(charts["confusion"]["labels"]) == 1000
