from __future__ import annotations


def test_service_throughput_measures_both_input_forms_through_the_service(run_bench) -> None:
    record = run_bench("service_throughput.py", "--tiny", timeout=180)
    assert record["settings"]["tiny"] and record["model"].startswith("bench-resnet18-")
    for form in ("encoded", "tensor"):
        row = record["rows"][form]
        assert row["raw_items_per_s"] > 0 and row["service_items_per_s"] > 0 and row["ratio"] > 0
        assert row["target"] == 0.97 and isinstance(row["met"], bool)
        (run,) = row["service_runs"]
        assert run["items"] == record["settings"]["images"] and run["errors"] == 0
        assert set(run["stage_p50_ms"]) >= {"load", "preprocess", "predict", "postprocess"}
        assert row["raw_runs"][0]["items"] == record["settings"]["images"]
