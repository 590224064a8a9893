from __future__ import annotations


def test_tracing_overhead_compares_the_two_levels_on_postgresql(run_bench, fresh_postgres_url: str) -> None:
    record = run_bench(
        "tracing_overhead.py",
        *("--database-url", fresh_postgres_url, "--batch-size", "4", "--limit", "8", "--repeats", "1", "--jobs", "1"),
    )
    assert record["database"]["backend"] == "postgresql" and record["database"]["version"]
    (case,) = record["cases"]
    assert (case["model"], case["framework"], case["batch_size"], case["shards_per_run"]) == (
        "digits-cnn",
        "onnxruntime",
        4,
        1,
    )
    none, stage = case["levels"]["none"], case["levels"]["stage"]
    # 2 batches: 2 x 4 stage timings at both levels; spans: queue, shard, store and 2 x (batch + 5 stages), the
    # model being loaded before the measured shards.
    assert none["stage_timing_rows_per_shard"] == stage["stage_timing_rows_per_shard"] == 8
    assert (none["spans_per_shard"], stage["spans_per_shard"]) == (0, 15)
    assert none["median_run_s"] > 0 and stage["median_run_s"] > 0 and stage["span_save_ms_per_shard"] > 0
    assert abs(case["overhead_percent"] - (stage["median_run_s"] / none["median_run_s"] - 1) * 100) < 0.01
