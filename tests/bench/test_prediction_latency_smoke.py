from __future__ import annotations

import pytest


@pytest.mark.parametrize(("http", "web_server"), [("requests", "werkzeug"), ("plain", "gunicorn")])
def test_prediction_latency_reports_both_sides_added_latency_and_phases(run_bench, http: str, web_server: str) -> None:
    record = run_bench("prediction_latency.py", "--tiny", "--http", http, "--web-server", web_server)
    assert record["requests"] == 20 and record["backend"] == "servers" and record["client"] == "wait"
    assert (record["http"], record["web_server"]) == (http, web_server)
    for side in ("in_process_ms", "service_ms", "added_ms"):
        assert {"p50", "p90", "p99"} <= set(record[side]), side
    assert 0 < record["in_process_ms"]["p50"] < record["service_ms"]["p50"]
    assert record["added_ms"]["p50"] == round(record["service_ms"]["p50"] - record["in_process_ms"]["p50"], 3)
    assert set(record["targets"]) == {"added_p50_ms", "added_p99_ms", "p50_met", "p99_met"}
    assert record["traced_requests"] == 20 and all(p["p50"] is not None for p in record["phases_ms"].values())
    assert record["cpu_ms_per_request"]["worker"] > 0 and record["s3_round_trip"]["put_ms"]["p50"] > 0
    assert record["cpu_ms_per_request"]["web"] > 0  # gunicorn's worker process counted as the web app's
