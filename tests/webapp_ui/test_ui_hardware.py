"""The Hardware panel of an evaluation's page and its timeline chart data, with a price for the `cpu` tag."""

from __future__ import annotations

import dataclasses
import re

import pytest

from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.workers import register_worker
from carml.settings import Settings


@pytest.fixture()
def settings(settings: Settings) -> Settings:
    """The UI tests' settings, with `cpu` priced and quick sampling so even a short run has a timeline."""
    return dataclasses.replace(settings, hardware_prices={"cpu": 0.36}, sample_interval_s=0.02)


def _section(html: str, section: str) -> str:
    found = re.search(rf'<section id="{section}">(.*?)</section>', html, flags=re.DOTALL)
    assert found, f"no {section} section"
    return found.group(1)


def test_the_hardware_panel_shows_cpu_memory_energy_and_cost(client, finished_evaluation) -> None:
    result = client.get(f"/api/v1/results/{finished_evaluation}").json
    panel = _section(client.get(f"/jobs/{finished_evaluation}").get_data(as_text=True), "hardware")
    metrics = result["hardware_metrics"]
    assert f"{metrics['cpu_percent']['max']:,.1f} % max" in panel
    assert f"{metrics['peak_rss_mib']:,.1f} MiB resident" in panel
    assert 'id="no-energy"' in panel and "no energy counter on this worker" in panel  # a CPU-only worker
    assert result["price_per_hour"] == 0.36 and result["cost_per_1000_items"] > 0
    assert f"{result['cost_per_1000_items']:.3g}" in panel and "at 0.36 per hour" in panel
    assert 'id="hardware-chart"' in panel and 'id="gpu-table"' not in panel


def test_the_timeline_has_cpu_lines_per_shard_from_the_samples(client, finished_evaluation) -> None:
    hardware = client.get(f"/jobs/{finished_evaluation}/charts.json").json["hardware"]
    assert [s["label"] for s in hardware["series"]] == ["CPU % (shard 0)", "CPU % (shard 1)"]
    for series in hardware["series"]:
        assert series["axis"] == "percent" and len(series["points"]) >= 1
        xs = [p["x"] for p in series["points"]]
        assert xs == sorted(xs) and xs[0] >= 0
    assert any(p["y"] > 0 for s in hardware["series"] for p in s["points"])


def test_a_queued_job_has_no_timeline(client, evaluate) -> None:
    assert client.get(f"/jobs/{evaluate()}/charts.json").json["hardware"] is None


def test_a_tag_without_a_price_says_so(client, evaluate, settings) -> None:
    register_worker(settings, "unpriced@host", "cpu-unpriced")
    job_id = evaluate(hardware_tag="cpu-unpriced")
    assert run_shard(settings, job_id, 0, "unpriced@host", ModelCache()) == "succeeded"
    assert client.get(f"/api/v1/results/{job_id}").json["cost_per_1000_items"] is None
    panel = _section(client.get(f"/jobs/{job_id}").get_data(as_text=True), "hardware")
    assert 'id="no-price"' in panel and "no price configured for cpu-unpriced (CARML_HARDWARE_PRICES)" in panel
