"""Every page renders, empty and with data; vendored assets are served by the app itself."""

from __future__ import annotations

import pytest

from carml.jobs.workers import mark_offline

PAGES = ("/", "/models/digits-cnn", "/try", "/validate", "/datasets/upload", "/jobs", "/workers")


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_on_an_empty_service(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    html = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert 'id="site-nav"' in html
    for area in ("catalog", "try", "validate", "jobs", "workers"):
        assert f'data-nav="{area}"' in html
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_empty_states(client) -> None:
    assert 'id="no-jobs"' in client.get("/jobs").get_data(as_text=True)
    assert 'id="no-results"' in client.get("/models/digits-cnn").get_data(as_text=True)
    assert 'id="no-uploads"' in client.get("/datasets/upload").get_data(as_text=True)
    html = client.get("/workers?tag=nvidia-h100").get_data(as_text=True)
    assert 'id="no-workers"' in html and "carml worker --hardware nvidia-h100" in html


def test_without_live_workers_the_pages_say_how_to_start_one(client, settings, worker_id) -> None:
    mark_offline(settings, worker_id)
    for path in ("/try", "/validate"):
        html = client.get(path).get_data(as_text=True)
        assert 'id="no-live-workers"' in html and "carml worker --hardware" in html, path
    workers = client.get("/workers").get_data(as_text=True)
    assert 'id="no-workers"' in workers and "carml worker --hardware TAG" in workers
    assert 'id="offline-workers"' in workers and worker_id in workers


def test_every_page_renders_with_data(client, finished_evaluation, predict) -> None:
    prediction = predict("digits-cnn", "digit-3.png")
    for path in (*PAGES, f"/jobs/{finished_evaluation}", f"/jobs/{prediction}", "/jobs?status=succeeded"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:2000])
    catalog = client.get("/").get_data(as_text=True)
    assert 'data-model="digits-cnn"' in catalog and 'data-hardware="cpu"' in catalog
    model = client.get("/models/digits-cnn").get_data(as_text=True)
    assert 'id="results-table"' in model and finished_evaluation[:8] in model


def test_catalog_filters_and_search(client) -> None:
    def models(query: str) -> set[str]:
        html = client.get(f"/{query}").get_data(as_text=True)
        return {name for name in ("digits-cnn", "nudenet-detector", "silero-vad") if f'data-model="{name}"' in html}

    assert models("") == {"digits-cnn", "nudenet-detector", "silero-vad"}
    assert models("?task=object-detection") == {"nudenet-detector"}
    assert models("?modality=audio") == {"silero-vad"}
    assert models("?framework=pytorch") == {"digits-cnn"}
    assert models("?q=DIGIT") == {"digits-cnn"}
    assert models("?q=nothing-like-this") == set()
    assert "No model matches these filters" in client.get("/?q=zzz").get_data(as_text=True)


def test_model_page_shows_the_manifest(client) -> None:
    html = client.get("/models/digits-cnn").get_data(as_text=True)
    for framework in ("onnxruntime", "pytorch", "tensorflow"):
        assert f'id="manifest-{framework}"' in html
    assert "decode(color_mode=grayscale, layout=CHW)" in html and "resize(size=8×8" in html
    assert "softmax()" in html and "top_k(k=5)" in html
    assert "7bb18fffc2a497353b8f7918908f1a9e9355beaf516743f207a9063ffc63a621" in html  # the ONNX artifact
    assert "98.3 %" in html  # claimed top-1


def test_unknown_pages_are_html_404s(client) -> None:
    for path in ("/models/no-such-model", "/jobs/0000-not-a-job", "/jobs/../../etc", "/samples/../../x"):
        response = client.get(path)
        assert response.status_code == 404, path
    response = client.get("/models/no-such-model")
    assert response.mimetype == "text/html" and "no model named" in response.get_data(as_text=True)
    # The JSON API keeps its own error shape.
    assert client.get("/api/v1/jobs/nope").json["error"]["status"] == 404


@pytest.mark.parametrize(
    ("path", "mimetype"),
    [
        ("/static/vendor/chart.js/chart.umd.js", "text/javascript"),
        ("/static/vendor/chartjs-chart-matrix/chartjs-chart-matrix.min.js", "text/javascript"),
        ("/static/vendor/chart.js/LICENSE.md", None),
        ("/static/vendor/chartjs-chart-matrix/LICENSE", None),
        ("/static/carml.css", "text/css"),
        ("/static/carml.js", "text/javascript"),
        ("/static/charts.js", "text/javascript"),
    ],
)
def test_static_and_vendored_assets_are_served(client, path, mimetype) -> None:
    response = client.get(path)
    assert response.status_code == 200 and response.data
    if mimetype:
        assert response.mimetype == mimetype
    response.close()


def test_the_job_page_loads_chart_js_from_this_server(client, finished_evaluation) -> None:
    html = client.get(f"/jobs/{finished_evaluation}").get_data(as_text=True)
    assert 'src="/static/vendor/chart.js/chart.umd.js"' in html
    assert 'src="/static/vendor/chartjs-chart-matrix/chartjs-chart-matrix.min.js"' in html
    assert "http://" not in html.split("<main")[0] and "https://" not in html.split("<main")[0]


def test_samples_are_served_and_listed(client) -> None:
    png = client.get("/samples/digit-7.png")
    assert png.status_code == 200 and png.mimetype == "image/png" and png.data.startswith(b"\x89PNG")
    wav = client.get("/samples/speech.wav")
    assert wav.status_code == 200 and wav.mimetype.startswith("audio/")
    html = client.get("/try").get_data(as_text=True)
    assert 'value="astronaut.jpg"' in html and 'value="digit-0.png"' in html
