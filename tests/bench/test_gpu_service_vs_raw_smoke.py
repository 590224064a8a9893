from __future__ import annotations


def test_the_gpu_script_runs_its_steps_on_a_cpu(run_bench) -> None:
    record = run_bench("gpu/service_vs_raw.py", "--device", "cpu", "--tiny", timeout=180)
    assert record["device"]["device"] == "cpu" and record["device"]["torch"]
    assert record["model_names"] == {"fp32": "bench-resnet50-32px-1000c", "bf16": "bench-resnet50-32px-1000c-bf16"}
    for precision in ("fp32", "bf16"):
        row = record["rows"][precision]
        assert row["raw_items_per_s"] > 0 and row["service_items_per_s"] > 0 and row["target"] == 0.9
        (run,) = row["service_runs"]
        assert run["items"] == record["settings"]["images"] and run["errors"] == 0 and run["device"] == "cpu"
