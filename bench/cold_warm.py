"""Cold vs warm: a worker's first job on a model (artifact fetch, verify, load) against the next one on it.

The model's artifact is remote: it is put in the deployment's S3 bucket (moto's server standing in for MinIO) and
the manifest names it as s3://BUCKET/KEY with its SHA-256, so a worker with an empty artifact cache must fetch it,
verify it and load it. The model is the benchmarks' ResNet-18 (TorchScript, `bench/image_model.py`) or, with
`--model digits`, digits-cnn for ONNX Runtime (a small file: the fixed costs show).

Each repeat starts a fresh `carml worker` with an empty CARML_CACHE_DIR and sends it one-image prediction jobs:
job 1 is cold, jobs 2.. are warm. For each job: the time from submission to answer at the client (the API waits
for the end), its time in the queue (job recorded → shard claimed: on a fresh worker this includes its pool
process's first task), the worker's shard time, its `load_model` span and `model_load_ms`, and whether the
worker's model cache had the model (`carml.jobs.model_cache`: keyed by manifest digest, framework and device;
least recently used of 2 evicted). The JSON asserts that no warm job loaded anything. On the last worker, the
manifest is then changed (its description only): the next job must load the model again (the cache key is the
manifest's digest), from the local artifact cache this time, and the job after it is warm again.

Run: .venv/bin/python bench/cold_warm.py [--model resnet18|digits] [--workers 3] [--warm-jobs 2]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_record import default_out, write_result
from image_model import file_sha256
from service_harness import PROJECT_ROOT, BenchService

IMAGE_SIZE, CLASSES = 64, 10
WAIT_S = 60  # the most a request may ask; the deployment below lets it wait that long


class RemoteModel:
    """A model manifest in `folder` whose artifact is an object in the deployment's S3 bucket."""

    def __init__(self, kind: str, folder: Path, build: Path):
        self.kind, self.folder, self.build = kind, folder, build
        self.manifest = folder / "models" / f"bench-{kind}-s3.yaml"
        self.name = f"bench-{kind}-s3"
        self.artifact = Path()
        self.text = ""

    def publish(self, settings: Any) -> str:
        """Build the model, put its artifact in the bucket, write its manifest; returns the artifact's URL."""
        from carml.storage import open_object_store

        store = open_object_store(settings)
        self.artifact, text_for = self._build()
        key = f"bench-models/{self.artifact.name}"
        store.put_file(key, self.artifact)
        url = f"s3://{settings.object_store.removeprefix('s3://').split('/')[0]}/{key}"
        self.text = text_for(url, file_sha256(self.artifact))
        self.manifest.parent.mkdir(parents=True, exist_ok=True)
        self.manifest.write_text(self.text, encoding="utf-8")
        return url

    def _build(self) -> tuple[Path, Any]:
        if self.kind == "digits":
            source = PROJECT_ROOT / "manifests" / "models"
            labels = self.folder / "models" / self.name / "labels.txt"
            labels.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / "digits-cnn" / "labels.txt", labels)  # local, beside the manifest
            template = (source / "digits-cnn-onnxruntime.yaml").read_text(encoding="utf-8")
            old_url = "digits-cnn/digits-cnn.onnx"
            old_sha = template.split("sha256: ", 1)[1].split()[0]

            def digits_text(url: str, sha256: str) -> str:
                text = template.replace("name: digits-cnn\n", f"name: {self.name}\n")
                text = text.replace("url: digits-cnn/labels.txt", f"url: {self.name}/labels.txt")
                return text.replace(old_url, url).replace(old_sha, sha256)

            return source / "digits-cnn" / "digits-cnn.onnx", digits_text
        from image_model import model_manifest_text, write_image_model

        built = write_image_model(self.build, depth=18, image_size=IMAGE_SIZE, classes=CLASSES)

        def resnet_text(url: str, sha256: str) -> str:
            text = model_manifest_text(built, 18, IMAGE_SIZE, CLASSES, url, sha256)
            return text.replace(f"name: {built}\n", f"name: {self.name}\n")

        return self.build / "models" / built / f"{built}.pt", resnet_text

    def change_description(self) -> None:
        """Edit the manifest so that its digest changes and nothing else does."""
        self.manifest.write_text(self.text.replace("description: >\n", "description: >\n  Changed.\n", 1))

    def input_file(self) -> tuple[str, bytes, str]:
        """(file name, bytes, media type) of one input the model takes."""
        from PIL import Image

        if self.kind == "digits":
            from prediction_latency import digit_png

            return "digit.png", digit_png(), "image/png"
        from image_model import synthetic_images

        pixels, _ = synthetic_images(1, IMAGE_SIZE, CLASSES)
        buffer = io.BytesIO()
        Image.fromarray(pixels[0]).save(buffer, format="PNG")
        return "image.png", buffer.getvalue(), "image/png"


def _span_ms(settings: Any, job_id: str, name: str) -> float | None:
    from carml.tracing.store import read_spans

    spans = [s for s in read_spans(settings, job_id, 500)[1] if s["name"] == name]
    return round(sum(s["duration_ms"] for s in spans), 3) if spans else None


def run_job(service: BenchService, session: Any, model: RemoteModel, tag: str) -> dict[str, Any]:
    """One prediction, waited for; what it cost and whether the worker loaded the model for it."""
    name, data, media = model.input_file()
    form = {"kind": "predict", "model": model.name, "hardware_tag": tag, "wait": str(WAIT_S)}
    started = time.perf_counter()
    response = session.post(f"{service.base_url}/api/v1/jobs", data=form, files={"files": (name, data, media)})
    if response.status_code != 201:
        raise RuntimeError(f"submission refused ({response.status_code}): {response.text}")
    job = response.json()
    while job["status"] not in ("succeeded", "failed", "cancelled", "timed_out"):
        job = session.get(f"{service.base_url}/api/v1/jobs/{job['id']}", params={"wait": str(WAIT_S)}).json()
    total_ms = (time.perf_counter() - started) * 1000
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job['id']} {job['status']}: {job.get('error')}\n{service.log_tail('web')}")
    settings = service.settings()
    result = job["result"]
    return {
        "job_id": job["id"],
        "client_ms": round(total_ms, 3),
        "queue_ms": _span_ms(settings, job["id"], "queue"),
        "shard_ms": _span_ms(settings, job["id"], "shard"),
        "load_model_span_ms": _span_ms(settings, job["id"], "load_model"),
        "model_load_ms": result["model_load_ms"],
        "model_cache_hit": result["reproducibility"]["model_cache_hit"],
        "predict_ms": result["predictions"][0]["stages_ms"].get("predict"),
    }


def fetch_and_verify_ms(settings: Any, model: RemoteModel, cache_dir: Path) -> float:
    """The artifact's fetch from S3 and SHA-256 check alone, with an empty cache, in this process."""
    from dataclasses import replace

    from carml.artifacts import ArtifactCache
    from carml.manifest.loader import load_model_manifest

    loaded = load_model_manifest(model.manifest)
    cache = ArtifactCache(replace(settings, cache_dir=cache_dir))
    started = time.perf_counter()
    cache.resolve(loaded.manifest.primary_artifact, loaded.folder)
    return (time.perf_counter() - started) * 1000


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    manifests = workdir / "manifests"
    model = RemoteModel(args.model, manifests, workdir / "build")
    env = {"CARML_API_MAX_WAIT_S": str(WAIT_S)}
    repeats: list[dict[str, Any]] = []
    with BenchService(workdir / "service", "servers", manifest_dirs=(manifests,), env=env) as service:
        url = model.publish(service.settings())
        service.start_web()
        session = service.session()
        fetch_ms = [fetch_and_verify_ms(service.settings(), model, workdir / f"probe-{i}") for i in range(args.workers)]
        changed: dict[str, Any] = {}
        for index in range(args.workers):
            cache_dir = workdir / f"worker-cache-{index}"  # empty: this worker must fetch the artifact
            worker = service.start_worker("cpu", env={"CARML_CACHE_DIR": str(cache_dir)})
            jobs = [run_job(service, session, model, "cpu") for _ in range(1 + args.warm_jobs)]
            repeats.append({"worker": index, "cold": jobs[0], "warm": jobs[1:]})
            if index == args.workers - 1:
                model.change_description()
                reloaded, after = (run_job(service, session, model, "cpu") for _ in range(2))
                changed = {"reloaded": reloaded, "next": after}
            service.stop(worker)
    cold = [r["cold"] for r in repeats]
    warm = [job for r in repeats for job in r["warm"]]
    warm_loaded_nothing = all(
        job["model_cache_hit"] and job["load_model_span_ms"] is None and job["model_load_ms"] is None for job in warm
    )
    cold_loaded = all(not job["model_cache_hit"] and job["model_load_ms"] for job in cold)
    return {
        "model": model.name,
        "framework": "onnxruntime" if args.model == "digits" else "pytorch",
        "artifact_url": url,
        "artifact_bytes": model.artifact.stat().st_size,
        "workers": args.workers,
        "warm_jobs_per_worker": args.warm_jobs,
        "cold_ms": {
            "client": _median([j["client_ms"] for j in cold]),
            "queue": _median([j["queue_ms"] for j in cold]),
            "shard": _median([j["shard_ms"] for j in cold]),
            "load_model_span": _median([j["load_model_span_ms"] for j in cold]),
            "model_load": _median([j["model_load_ms"] for j in cold]),
        },
        "warm_ms": {
            "client": _median([j["client_ms"] for j in warm]),
            "queue": _median([j["queue_ms"] for j in warm]),
            "shard": _median([j["shard_ms"] for j in warm]),
            "load_model_span": _median([j["load_model_span_ms"] for j in warm]),
            "model_load": _median([j["model_load_ms"] for j in warm]),
        },
        "cold_over_warm_client": round(
            (_median([j["client_ms"] for j in cold]) or 0) / (_median([j["client_ms"] for j in warm]) or 1), 2
        ),
        "artifact_fetch_and_verify_ms": _median(fetch_ms),
        "assertions": {
            "warm_jobs_loaded_nothing": warm_loaded_nothing,
            "cold_jobs_loaded_the_model": cold_loaded,
            "changed_manifest_reloads": bool(changed) and not changed["reloaded"]["model_cache_hit"],
            "after_reload_warm_again": bool(changed) and changed["next"]["model_cache_hit"],
        },
        "changed_manifest": changed,
        "repeats": repeats,
    }


def print_table(figures: dict[str, Any]) -> None:
    print(
        f"{figures['model']} ({figures['framework']}), artifact {figures['artifact_bytes'] / 2**20:.1f} MiB at "
        f"{figures['artifact_url']}; {figures['workers']} fresh workers, medians in ms"
    )
    print(f"{'':<6} {'client':>10} {'queue':>10} {'shard':>10} {'load_model':>11}")
    for label in ("cold", "warm"):
        row = figures[f"{label}_ms"]
        load = "—" if row["load_model_span"] is None else f"{row['load_model_span']:.1f}"
        print(f"{label:<6} {row['client']:>10.1f} {row['queue']:>10.1f} {row['shard']:>10.1f} {load:>11}")
    print(f"cold / warm (client): {figures['cold_over_warm_client']:.1f}x")
    print(f"artifact fetch + sha256 check alone (this process): {figures['artifact_fetch_and_verify_ms']:.1f} ms")
    for name, holds in figures["assertions"].items():
        print(f"  {name}: {'yes' if holds else 'NO'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("resnet18", "digits"), default="resnet18")
    parser.add_argument("--workers", type=int, default=3, help="Fresh workers, one cold job each (default 3).")
    parser.add_argument("--warm-jobs", type=int, default=2, help="Warm jobs after each cold one (default 2).")
    parser.add_argument("--tiny", action="store_true", help="digits, 1 worker, 1 warm job: a smoke run.")
    parser.add_argument("--out", type=Path, default=default_out("cold_warm"))
    args = parser.parse_args(argv)
    if args.tiny:
        args.model, args.workers, args.warm_jobs = "digits", 1, 1
    if args.workers < 1 or args.warm_jobs < 1:
        parser.error("--workers and --warm-jobs must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="carml-cold-warm-"))
    try:
        figures = measure(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(figures)
    print(f"wrote {write_result(args.out, 'cold_warm', figures)}")
    if not all(figures["assertions"].values()):
        raise SystemExit("a cache assertion does not hold: see 'assertions' in the JSON")


if __name__ == "__main__":
    main()
