"""The Recommend page (constraint form, ranked table, scatter chart data) and the Reports page (filters,
downloads through the API, a preview), over real finished evaluations."""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape
from pathlib import Path

import pytest
from measured_runs import PRICED_TAG, UNPRICED_TAG, MeasuredRuns, measured_settings, run_evaluations
from support import sign_in

from carml.db.migrate import upgrade
from carml.recommend import Constraints, recommend
from carml.settings import Settings
from webapp import create_app

_CHART_DATA = re.compile(r'<script type="application/json" id="recommend-chart-data">(.*?)</script>', re.DOTALL)
_ROW = re.compile(
    r'<tr data-rank="(\d+)" data-pareto="(true|false)"[^>]*data-hardware="([^"]+)" data-batch-size="(\d+)"'
)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> MeasuredRuns:
    return run_evaluations(measured_settings(tmp_path_factory.mktemp("ui-recommend")))


@pytest.fixture()
def settings(measured: MeasuredRuns) -> Settings:
    """Overrides the web app's empty database with the measured one (the tests here only read it)."""
    return measured.settings


def _chart(html: str) -> dict:
    found = _CHART_DATA.search(html)
    assert found, "no chart data on the page"
    return json.loads(found.group(1))


def test_the_page_ranks_marks_the_front_and_carries_the_scatter_data(client, settings) -> None:
    response = client.get("/recommend")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.search(r'data-nav="recommend"\s+class="active"', html)
    assert 'id="recommend-chart"' in html and "vendor/chart.js/chart.umd.js" in html and "recommend.js" in html
    expected = recommend(settings, Constraints())
    rows = _ROW.findall(html)
    assert rows == [
        (str(r.rank), "true" if r.pareto else "false", r.candidate.hardware_tag, str(r.candidate.batch_size))
        for r in expected.ranked
    ]
    assert html.count('class="front-mark"') == sum(r.pareto for r in expected.ranked) >= 1
    assert "Cost is left out of the Pareto front" in html
    chart = _chart(html)
    assert [(p["rank"], p["pareto"]) for p in chart["points"]] == [(r.rank, r.pareto) for r in expected.ranked]
    for point, ranked in zip(chart["points"], expected.ranked, strict=True):
        assert point["x"] == pytest.approx(ranked.candidate.p99_ms)
        assert point["y"] == pytest.approx(ranked.candidate.top1 * 100)
        assert point["url"] == f"/jobs/{ranked.candidate.latest_job_id}"
    assert chart["cost_sized"] is False  # one candidate has no price, so size cannot show cost
    # The page's scripts are the server's own files (the CSP allows no other), and they are served.
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    for script in ("/static/vendor/chart.js/chart.umd.js", "/static/recommend.js"):
        assert client.get(script).status_code == 200


def test_constraints_narrow_the_ranking_and_the_excluded_are_counted(client) -> None:
    html = client.get("/recommend?min_top1=90%25&max_cost=1").get_data(as_text=True)
    assert [row[2] for row in _ROW.findall(html)] == [PRICED_TAG, PRICED_TAG]
    assert 'data-reason="cost_per_1000_items_unknown" data-count="1"' in html
    chart = _chart(html)
    assert chart["cost_sized"] is True and chart["cost_min"] <= chart["cost_max"]
    assert 'value="90%"' in html  # the form shows back what was typed


def test_nothing_meeting_the_constraints_says_so(client) -> None:
    html = client.get("/recommend?min_top1=1").get_data(as_text=True)
    assert "No measured candidate meets the constraints: all 3 were excluded." in html
    assert 'data-reason="top1_below_min" data-count="3"' in html and 'id="recommend-chart"' not in html
    html = client.get("/recommend?task=object-detection").get_data(as_text=True)
    assert "No measured candidate yet" in html and "of task object-detection" in html


def test_a_bad_constraint_is_shown_next_to_its_field(client) -> None:
    response = client.get("/recommend?min_top1=95&max_p99_ms=5")
    assert response.status_code == 400
    html = unescape(response.get_data(as_text=True))
    assert 'id="min_top1-error"' in html and "min_top1 '95' is above 1" in html
    assert 'id="recommendation"' not in html


def test_the_reports_page_links_each_report_to_its_csv_download(client) -> None:
    response = client.get("/reports?hardware=cpu-spare")
    assert response.status_code == 200
    html = unescape(response.get_data(as_text=True))
    assert re.search(r'data-nav="reports"\s+class="active"', html)
    links = dict(
        re.findall(
            r'<tr data-report="([a-z_]+)">.*?<a href="([^"]+)" class="button" data-download="csv"', html, re.DOTALL
        )
    )
    assert list(links) == ["evaluation_summary", "hardware_comparison", "stage_breakdown", "model_leaderboard"]
    assert links["model_leaderboard"] == "/api/v1/reports/model_leaderboard?format=csv"  # it takes no hardware filter
    assert "not filtered by hardware" in html
    download = client.get(links["evaluation_summary"])
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"] == 'attachment; filename="evaluation_summary.csv"'
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert len(rows) == 2 and {r["hardware_tag"] for r in rows} == {UNPRICED_TAG}


def test_the_reports_page_previews_a_report(client) -> None:
    html = client.get("/reports?show=hardware_comparison&model=digits-cnn").get_data(as_text=True)
    assert 'id="report-preview" data-report="hardware_comparison" data-rows="3"' in html
    preview = html[html.index('id="report-preview"') :]
    assert preview.count("<tr>") == 1 + 3  # the header row, then one per group
    assert "avg_cost_per_1000_items" in html


@pytest.mark.parametrize(
    ("query", "field"),
    [("since=last+week", "since"), ("model=Not%20A%20Name", "model"), ("show=nope", "show")],
)
def test_bad_report_filters_are_shown_next_to_their_field(client, query: str, field: str) -> None:
    response = client.get(f"/reports?{query}")
    assert response.status_code == 400 and f'id="{field}-error"' in response.get_data(as_text=True)


def test_both_pages_render_on_an_empty_service(tmp_path: Path) -> None:
    empty = measured_settings(tmp_path)
    upgrade(empty.database)
    client = sign_in(create_app(empty, lambda *_: None).test_client(), empty)
    html = client.get("/recommend").get_data(as_text=True)
    assert 'id="no-candidates"' in html and "No measured candidate yet" in html
    html = client.get("/reports?show=evaluation_summary").get_data(as_text=True)
    assert 'id="no-rows"' in html and 'data-download="csv"' in html
