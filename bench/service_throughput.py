"""Throughput of a ResNet through the whole service against a plain torch loop, side by side, on this CPU.

For each input form — encoded images (JPEG or PNG class folders) and pre-decoded tensors (uint8 pixels in
an NPZ) — the same TorchScript ResNet (`bench/image_model.py`) classifies the same images at the same batch
size and compute threads, two ways:

- raw: a plain loop in this process (`bench/raw_loop.py`: PIL + numpy preprocessing, torch.inference_mode,
  softmax + top-5), timed from reading the first file (or slicing the first batch of the NPZ's pixels, read into
  memory beforehand: the raw loop's best case) to the last batch's scores, the model already loaded;
- service: `POST /api/v1/jobs` (an evaluation) to `carml web`, through the broker to one `carml worker`,
  which writes predictions to the object store and results to the database; timed from the submit request to
  the long poll (`GET /api/v1/jobs/ID?wait=60&confusion=cells`) that returns the job final, as a user sees it
  (the confusion matrix as its non-zero cells, `--confusion matrix` for all million of them). The worker has
  run one small job on each dataset first, so the model is loaded (cold loads are the cold/warm benchmark's
  business). The job's own reported throughput (timed batches only) and per-stage medians are recorded too.

Raw and service runs alternate (raw first in odd repeats, service first in even ones) so drift weighs on both;
the ratio reported per form is service items/s over raw items/s of the medians (the target is >= 0.97).

Back ends: `--backend servers` (default; PostgreSQL, Redis, moto's S3) or `embedded` (SQLite, the filesystem
queue, local disk). Run:
    .venv/bin/python bench/service_throughput.py                      # 2,000 images of 128 px, 3 repeats
    .venv/bin/python bench/service_throughput.py --tiny               # seconds, for the smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules, however this is started

from bench_record import default_out, write_result  # noqa: E402
from image_model import model_name, write_image_dataset, write_image_model  # noqa: E402
from raw_loop import RawRun, encoded_batches, load_tensors, run_raw, tensor_batches  # noqa: E402
from service_harness import BenchService  # noqa: E402
from side_by_side import alternate, print_ratios, ratio_summary  # noqa: E402

NAME = "service_throughput"
HARDWARE_TAG = "bench-throughput"
TARGET = 0.97
LONG_POLL_S = 60
TINY = {"images": 48, "image_size": 32, "batch_size": 16, "repeats": 1}


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="Images per dataset (default 2000).")
    parser.add_argument("--image-size", type=int, default=128, help="Model input and image side in pixels.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--depth", type=int, choices=(18, 50), default=18, help="ResNet depth.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="Compute threads, both sides.")
    parser.add_argument("--encoded", choices=("jpeg", "png"), default="jpeg", help="Encoding of the decode path.")
    parser.add_argument("--forms", nargs="+", choices=("encoded", "tensor"), default=["encoded", "tensor"])
    parser.add_argument("--backend", choices=("servers", "embedded"), default="servers")
    parser.add_argument("--data-dir", type=Path, help="Keep the model and datasets here (reused when present).")
    parser.add_argument(
        "--poll-s", type=float, default=0.0, help="Poll the job every S seconds instead of long polls (?wait=60)."
    )
    parser.add_argument(
        "--confusion",
        choices=("cells", "matrix", "none"),
        default="cells",
        help="How the answer shows the 1,000-class confusion matrix (?confusion=; default cells, its non-zero "
        "cells: the full matrix is a million cells, ~3 MB of JSON to build and parse).",
    )
    parser.add_argument("--tiny", action="store_true", help="A few seconds' run: " + str(TINY))
    parser.add_argument("--out", type=Path, default=default_out(NAME))
    args = parser.parse_args()
    if args.tiny:
        for key, value in TINY.items():
            setattr(args, key, value)
    if args.images < 1 or args.batch_size < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--images, --batch-size, --repeats and --threads must be at least 1")
    if args.image_size < 32:
        parser.error("--image-size must be at least 32")
    return args


class Bench:
    """The model, the datasets and the running service, measured form by form."""

    def __init__(self, args: argparse.Namespace, folder: Path, service: BenchService):
        self.args, self.folder, self.service = args, folder, service
        self.session = service.session()
        self.model = model_name(args.depth, args.image_size, 1000)
        self.datasets = {
            form: f"throughput-{kind}-{args.images}-{args.image_size}px"
            for form, kind in (("encoded", args.encoded), ("tensor", "tensor"))
        }
        self.torch_model = self._load_torchscript()
        tensors = folder / "data" / f"{self.datasets['tensor']}.npz"
        self.tensors = load_tensors(tensors) if "tensor" in args.forms else None

    def _load_torchscript(self) -> Any:
        import torch

        torch.set_num_threads(self.args.threads)  # what `carml worker --threads N` sets in the worker
        artifact = self.folder / "models" / self.model / f"{self.model}.pt"
        model = torch.jit.load(str(artifact), map_location="cpu").eval()
        size = self.args.image_size
        with torch.inference_mode():  # torch's first-call paths (allocator, kernels) before anything is timed
            model(torch.zeros(self.args.batch_size, 3, size, size))
        return model

    def raw(self, form: str) -> RawRun:
        if form == "tensor" and self.tensors is not None:
            batches = tensor_batches(*self.tensors, self.args.batch_size)
        else:
            batches = encoded_batches(
                self.folder / "data" / self.datasets[form], self.args.batch_size, self.args.image_size
            )
        return run_raw(self.torch_model, batches)

    def job_body(self, form: str, limit: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "evaluate",
            "model": self.model,
            "framework": "pytorch",
            "dataset": self.datasets[form],
            "hardware_tag": HARDWARE_TAG,
            "batch_size": self.args.batch_size,
        }
        if limit is not None:
            body["limit"] = limit
        return body

    def wait(self, job_id: str) -> dict[str, Any]:
        """The job's summary once final: by long polls (`?wait=`), or polls every `--poll-s` when it is set."""
        if self.args.poll_s > 0:
            return self.service.wait(self.session, job_id, poll_s=self.args.poll_s, confusion=self.args.confusion)
        return self.service.wait(self.session, job_id, long_poll_s=LONG_POLL_S, confusion=self.args.confusion)

    def through_service(self, form: str, limit: int | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        job_id = self.service.submit(self.session, self.job_body(form, limit))
        summary = self.wait(job_id)
        seconds = time.perf_counter() - started
        result = summary["result"]
        return {
            "job": job_id,
            "items": result["items"] + result["errors"],
            "errors": result["errors"],
            "seconds": round(seconds, 4),
            "items_per_s": round((result["items"] + result["errors"]) / seconds, 2),
            "job_items_per_s": round(result["throughput_items_per_s"] or 0.0, 2),
            "stage_p50_ms": {stage: round(v.get("p50", 0.0), 3) for stage, v in result["stages_ms"].items()},
            "top1": result["top1"],
        }


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    folder = args.data_dir or workdir / "manifests"
    name = write_image_model(folder, depth=args.depth, image_size=args.image_size, classes=1000)
    kinds = {"encoded": args.encoded, "tensor": "tensor"}
    for form in args.forms:
        dataset = f"throughput-{kinds[form]}-{args.images}-{args.image_size}px"
        write_image_dataset(folder, dataset, count=args.images, image_size=args.image_size, form=kinds[form])
    rows: dict[str, Any] = {}
    with BenchService(workdir / "service", args.backend, manifest_dirs=(folder,)) as service:
        service.start_web()
        service.start_worker(HARDWARE_TAG, concurrency=1, threads=args.threads)
        bench = Bench(args, folder, service)
        for form in args.forms:  # the worker loads the model and reads each dataset once before timing
            bench.through_service(form, limit=min(args.images, 2 * args.batch_size))
        runs = alternate(args.forms, args.repeats, bench.raw, bench.through_service)
        for form in args.forms:
            raw_runs, service_runs = runs[form]
            rows[form] = {
                "dataset": bench.datasets[form],
                **ratio_summary(raw_runs, service_runs, TARGET),
                "raw_top1_hits": raw_runs[-1].top1_hits,
            }
    return {"model": name, "rows": rows}


def main() -> None:
    args = _parse()
    print(
        f"ResNet-{args.depth} at {args.image_size}px, {args.images} images, batch {args.batch_size}, "
        f"{args.threads} threads, {args.backend} back end, {args.repeats} repeats",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="carml-throughput-") as workdir:
        figures = measure(args, Path(workdir))
    print_ratios("form", figures["rows"])
    settings = {
        key: getattr(args, key)
        for key in (
            "images",
            "image_size",
            "batch_size",
            "depth",
            "repeats",
            "threads",
            "encoded",
            "backend",
            "poll_s",
            "confusion",
            "tiny",
        )
    }
    out = write_result(args.out, NAME, {"settings": settings, **figures})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
