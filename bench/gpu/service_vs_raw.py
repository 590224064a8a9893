"""ResNet-50 at batch 64 through the embedded service with a GPU worker, against a raw torch loop, fp32 and bf16.

Both sides classify the same pre-decoded images (uint8 HWC pixels in an NPZ, `bench/image_model.py`) with the
same TorchScript ResNet-50 and batch size, on the same device:

- raw: the loop a torch user writes (`raw_loop.run_raw_on_device`): the pixels already in memory, each batch sent
  to the device as uint8, scaled, standardised and made NCHW there, cast to bf16 for bf16, softmax + top-5 back
  on the host; the model loaded and warmed up first. For bf16 the model is `.to(torch.bfloat16)`, as the
  predictor does for a manifest with `framework.precision: bf16`.
- service: the embedded deployment (SQLite, the filesystem queue, the local object store; `carml web` and one
  `carml worker` with CARML_DEVICE set) runs an evaluation job submitted with `POST /api/v1/jobs`, timed from the
  submit request to the poll that sees it final. Each model has run one small job first (cold loads are the
  cold/warm benchmark's business). The job's own throughput and stage medians are recorded too.

Raw and service runs alternate, repeat by repeat; per precision it reports the medians and service/raw (target
>= 0.9). Prints a table, and writes JSON to $OUT/gpu_service_vs_raw.json when OUT is set (the device tool), else
to --out. `--device cpu --tiny` runs the same steps in seconds on a CPU (the smoke test).

On the GPU machine (bench/README.md says how to carry CarML's dependencies there):
    python3 bench/gpu/service_vs_raw.py                      # 32,768 images, 3 repeats, fp32 and bf16
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent
# The bench modules, and the checkout itself: on the GPU machine CarML is not installed, only its dependencies.
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

from bench_record import default_out, write_result  # noqa: E402
from image_model import artifact_path, write_image_dataset, write_image_model  # noqa: E402
from raw_loop import RawRun, load_tensors, run_raw_on_device  # noqa: E402
from service_harness import BenchService  # noqa: E402
from side_by_side import alternate, print_ratios, ratio_summary  # noqa: E402

NAME = "gpu_service_vs_raw"
HARDWARE_TAG = "bench-gpu"
TARGET = 0.9
PRECISIONS = ("fp32", "bf16")
TINY = {"images": 96, "distinct": 96, "image_size": 32, "batch_size": 16, "repeats": 1}
POLL_S = 0.02  # the embedded queue has no Redis to announce a job's end: the client polls the API


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu.")
    parser.add_argument("--images", type=int, default=32768, help="Images in the dataset (default 32768).")
    parser.add_argument("--distinct", type=int, default=1024, help="Distinct images among them, repeated.")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--depth", type=int, choices=(18, 50), default=50)
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="Keep the model, data and service files here.")
    parser.add_argument("--tiny", action="store_true", help="Seconds on a CPU: " + str(TINY))
    parser.add_argument("--out", type=Path, help="JSON file (default $OUT/gpu_service_vs_raw.json or bench/results).")
    args = parser.parse_args()
    if args.tiny:
        for key, value in TINY.items():
            setattr(args, key, value)
    if min(args.images, args.distinct, args.batch_size, args.repeats) < 1 or args.image_size < 32:
        parser.error("--images, --distinct, --batch-size and --repeats must be at least 1, --image-size 32")
    if args.out is None:
        args.out = Path(os.environ["OUT"]) / f"{NAME}.json" if os.environ.get("OUT") else default_out(NAME)
    return args


def _device_facts(device: str) -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {"device": device, "torch": torch.__version__, "cuda": torch.version.cuda}
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {device}: torch {torch.__version__} sees no CUDA device")
        facts["gpu"] = torch.cuda.get_device_name(torch.device(device))
        facts["cudnn"] = torch.backends.cudnn.version()
    return facts


class Bench:
    """The models, the data in memory for the raw loop, and the running service."""

    def __init__(self, args: argparse.Namespace, folder: Path, service: BenchService, models: dict[str, str]):
        import torch

        self.args, self.service, self.models = args, service, models
        self.session = service.session()
        self.dataset = f"gpu-tensors-{args.images}-{args.image_size}px"
        self.pixels, self.labels = load_tensors(folder / "data" / f"{self.dataset}.npz")
        artifact = artifact_path(folder, args.depth, args.image_size, 1000)
        self.raw_models: dict[str, Any] = {}
        self.dtypes: dict[str, Any] = {"fp32": None, "bf16": torch.bfloat16}
        for precision in args.precisions:
            model = torch.jit.load(str(artifact), map_location=args.device).eval()
            if self.dtypes[precision] is not None:
                model.to(self.dtypes[precision])
            self.raw_models[precision] = model
            warm = min(len(self.pixels), 3 * args.batch_size)  # first calls: kernels chosen, the JIT's profiling runs
            self._raw(precision, warm)

    def _raw(self, precision: str, count: int | None = None) -> RawRun:
        pixels, labels = self.pixels[:count], self.labels[:count]
        model, dtype = self.raw_models[precision], self.dtypes[precision]
        return run_raw_on_device(model, pixels, labels, self.args.batch_size, self.args.device, dtype)

    def raw(self, precision: str) -> RawRun:
        return self._raw(precision)

    def through_service(self, precision: str, limit: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "evaluate",
            "model": self.models[precision],
            "framework": "pytorch",
            "dataset": self.dataset,
            "hardware_tag": HARDWARE_TAG,
            "batch_size": self.args.batch_size,
        }
        if limit is not None:
            body["limit"] = limit
        started = time.perf_counter()
        job_id = self.service.submit(self.session, body)
        summary = self.service.wait(self.session, job_id, poll_s=POLL_S)
        seconds = time.perf_counter() - started
        result = summary["result"]
        items = result["items"] + result["errors"]
        return {
            "job": job_id,
            "items": items,
            "errors": result["errors"],
            "seconds": round(seconds, 4),
            "items_per_s": round(items / seconds, 2),
            "job_items_per_s": round(result["throughput_items_per_s"] or 0.0, 2),
            "stage_p50_ms": {stage: round(v.get("p50", 0.0), 3) for stage, v in result["stages_ms"].items()},
            "device": (result.get("reproducibility") or {}).get("device"),
        }


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    folder = workdir / "manifests"
    started = time.perf_counter()
    models = {
        p: write_image_model(folder, depth=args.depth, image_size=args.image_size, classes=1000, precision=p)
        for p in args.precisions
    }
    dataset = f"gpu-tensors-{args.images}-{args.image_size}px"
    write_image_dataset(
        folder, dataset, count=args.images, image_size=args.image_size, form="tensor", distinct=args.distinct
    )
    print(f"model and {args.images} images written in {time.perf_counter() - started:.1f} s", flush=True)
    env = {"CARML_DEVICE": args.device}
    with BenchService(workdir / "service", "embedded", manifest_dirs=(folder,), env=env) as service:
        service.start_web()
        service.start_worker(HARDWARE_TAG, concurrency=1)
        bench = Bench(args, folder, service, models)
        for precision in args.precisions:  # the worker loads each model and maps the data before anything is timed
            warm = bench.through_service(precision, limit=min(args.images, 3 * args.batch_size))
            print(f"  warm-up job {precision}: {warm['seconds']:.2f} s on {warm['device']}", flush=True)
        runs = alternate(args.precisions, args.repeats, bench.raw, bench.through_service)
        return {
            "model_names": models,
            "dataset": dataset,
            "rows": {p: ratio_summary(*runs[p], TARGET) for p in args.precisions},
        }


def main() -> None:
    args = _parse()
    facts = _device_facts(args.device)
    print(
        f"ResNet-{args.depth} at {args.image_size}px, batch {args.batch_size}, {args.images} images, "
        f"{args.repeats} repeats on {facts.get('gpu', args.device)} (torch {facts['torch']})",
        flush=True,
    )
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        figures = measure(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="carml-gpu-bench-") as workdir:
            figures = measure(args, Path(workdir))
    print_ratios("precision", figures["rows"])
    keys = ("device", "images", "distinct", "image_size", "batch_size", "depth", "precisions", "repeats", "tiny")
    settings = {key: getattr(args, key) for key in keys}
    out = write_result(args.out, NAME, {"settings": settings, "device": facts, **figures})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
