from __future__ import annotations


def test_evaluate_throughput_writes_a_row_per_framework_and_batch_size(run_bench) -> None:
    record = run_bench(
        "evaluate_throughput.py", "--repeats", "1", "--frameworks", "onnxruntime,pytorch", "--batch-sizes", "32"
    )
    rows = {(row["framework"], row["batch_size"]): row for row in record["rows"]}
    assert set(rows) == {("onnxruntime", 32), ("pytorch", 32)}
    assert rows[("onnxruntime", 32)]["ratio_to_reference"] == 1.0
    assert all(row["items_per_s"] > 0 and row["top1"] > 0.9 for row in rows.values())
