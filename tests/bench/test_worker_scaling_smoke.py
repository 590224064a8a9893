from __future__ import annotations


def test_worker_scaling_times_one_and_two_workers_on_the_same_sharded_evaluation(run_bench) -> None:
    record = run_bench("worker_scaling.py", "--tiny", timeout=240)
    assert record["one_worker_s"] > 0 and record["two_workers_s"] > 0
    assert record["speedup"] == round(record["one_worker_s"] / record["two_workers_s"], 3)
    assert record["two_workers_used_both"] is True and record["target"] == 1.9
    (one,), (two,) = record["runs"]["1"], record["runs"]["2"]
    assert one["items"] == two["items"] == 32 and len(one["shards"]) == len(two["shards"]) == 2
    assert one["workers_used"] == 1 and record["cpu_during_two_worker_runs"]["busiest"]
    assert record["raw_one_process_s"] > 0 and record["raw_two_processes_s"] > 0 and record["raw_speedup"] > 0
    assert set(record["worker_cpu"]) == {"1", "2"} and record["worker_cpu"]["2"]["cpu_s"] > 0
