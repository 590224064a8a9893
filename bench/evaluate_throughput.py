"""Throughput of `carml evaluate digits-cnn --dataset digits-png` per framework and batch size.

Prints items/s, each framework's ratio to ONNX Runtime at the same batch size, and how much of the
input work the prefetch pipeline hid behind inference (stage time summed / wall time; above 1 means
stages overlapped). Run: .venv/bin/python bench/evaluate_throughput.py [--repeats N]
[--frameworks onnxruntime,pytorch] [--batch-sizes 1,32] [--out FILE]; writes bench/results/evaluate_throughput.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench_record import default_out, write_result

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
    parser.add_argument(
        "--frameworks", default=",".join(FRAMEWORKS), help="comma-separated; the first is the reference"
    )
    parser.add_argument("--batch-sizes", default=",".join(map(str, BATCH_SIZES)), help="comma-separated")
    parser.add_argument("--out", type=Path, default=default_out("evaluate_throughput"))
    args = parser.parse_args()
    frameworks = args.frameworks.split(",")
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory() as cache_dir:
        rows = {(f, b): measure(f, b, args.repeats, cache_dir) for b in batch_sizes for f in frameworks}
    reference = frameworks[0]
    print(f"{'framework':<12} {'batch':>5} {'items/s':>10} {'vs ' + reference[:6]:>9} {'top-1':>7} {'overlap':>8}")
    figures = []
    for (framework, batch), (throughput, top1, overlap) in rows.items():
        ratio = throughput / rows[(reference, batch)][0]
        print(f"{framework:<12} {batch:>5} {throughput:>10.0f} {ratio:>8.2f}x {top1:>7.3f} {overlap:>7.2f}x")
        figures.append(
            {
                "framework": framework,
                "batch_size": batch,
                "items_per_s": throughput,
                "ratio_to_reference": ratio,
                "top1": top1,
                "stage_overlap": overlap,
            }
        )
    out = write_result(
        args.out, "evaluate_throughput", {"repeats": args.repeats, "reference": reference, "rows": figures}
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
