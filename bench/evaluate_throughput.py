"""Throughput of `carml evaluate digits-cnn --dataset digits-png` per framework and batch size.

Prints items/s, each framework's ratio to ONNX Runtime at the same batch size, and how much of the
input work the prefetch pipeline hid behind inference (stage time summed / wall time; above 1 means
stages overlapped). Run: .venv/bin/python bench/evaluate_throughput.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from carml.evaluation.runner import EvaluationOptions
from carml.runs import evaluate_model
from carml.settings import load_settings

FRAMEWORKS = ("onnxruntime", "pytorch", "tensorflow")
BATCH_SIZES = (1, 32, 128)


def measure(framework: str, batch_size: int, repeats: int, cache_dir: str) -> tuple[float, float, float]:
    """Median items/s, top-1 and stage-sum/wall ratio over `repeats` runs."""
    settings = load_settings({"CARML_CACHE_DIR": cache_dir})
    throughputs, overlaps, top1 = [], [], 0.0
    for _ in range(repeats):
        result = evaluate_model(
            settings,
            "digits-cnn",
            "digits-png",
            framework=framework,
            options=EvaluationOptions(batch_size=batch_size),
        )
        throughputs.append(result["throughput_items_per_s"])
        stage_total_ms = sum(s["mean"] * s["count"] for s in result["stages_ms"].values() if s["count"])
        overlaps.append(stage_total_ms / 1000 / result["wall_s"])
        top1 = result["top1"]
    return statistics.median(throughputs), top1, statistics.median(overlaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache_dir:
        rows = {(f, b): measure(f, b, args.repeats, cache_dir) for b in BATCH_SIZES for f in FRAMEWORKS}
    print(f"{'framework':<12} {'batch':>5} {'items/s':>10} {'vs onnxrt':>9} {'top-1':>7} {'overlap':>8}")
    for (framework, batch), (throughput, top1, overlap) in rows.items():
        ratio = throughput / rows[("onnxruntime", batch)][0]
        print(f"{framework:<12} {batch:>5} {throughput:>10.0f} {ratio:>8.2f}x {top1:>7.3f} {overlap:>7.2f}x")


if __name__ == "__main__":
    main()
