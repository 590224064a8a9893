from __future__ import annotations


def test_cold_warm_loads_the_remote_model_once_per_worker(run_bench) -> None:
    record = run_bench("cold_warm.py", "--tiny")
    assert record["artifact_url"].startswith("s3://") and record["artifact_bytes"] > 0
    assert record["cold_ms"]["load_model_span"] > 0 and record["warm_ms"]["load_model_span"] is None
    assert record["cold_ms"]["client"] > record["warm_ms"]["client"] > 0
    assert record["assertions"] == {
        "warm_jobs_loaded_nothing": True,
        "cold_jobs_loaded_the_model": True,
        "changed_manifest_reloads": True,
        "after_reload_warm_again": True,
    }
