"""The command line as a user meets it: listings, predictions, evaluations and clear failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from support import run_carml_process

from carml.datasets.digits import load_digits_split


def _onnxruntime_has_cuda() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def test_models_lists_every_framework_of_digits_cnn(run_cli) -> None:
    code, out, _ = run_cli("models", "--json")
    assert code == 0
    rows = json.loads(out)
    digits = {r["framework"]: r for r in rows if r["name"] == "digits-cnn"}
    assert set(digits) == {"pytorch", "onnxruntime", "tensorflow"}
    assert all(r["runnable"] and r["claimed_top1"] >= 0.95 for r in digits.values())
    assert {"nudenet-detector", "silero-vad"} <= {r["name"] for r in rows}
    code, out, _ = run_cli("models")
    header = ["NAME", "VERSION", "FRAMEWORK", "TASK", "TOP-1", "TOP-5", "RUNNABLE", "SOURCE", "OWNER"]
    assert out.splitlines()[0].split() == header


def test_datasets_lists_digits(run_cli) -> None:
    code, out, _ = run_cli("datasets", "--json")
    assert code == 0
    assert {"digits", "digits-png"} <= {r["name"] for r in json.loads(out)}


def test_predict_a_digit_image(run_cli, tmp_path: Path) -> None:
    images, labels = load_digits_split("test")
    path = tmp_path / "digit.png"
    Image.fromarray(images[0]).resize((64, 64), Image.Resampling.NEAREST).save(path)
    code, out, err = run_cli("predict", "--local", "digits-cnn", str(path), "-f", "pytorch", "--top-k", "3", "--json")
    assert code == 0, err
    top = json.loads(out)["predictions"][0]["outputs"]["logits"]["top_k"]
    assert len(top) == 3
    assert top[0]["label"] == str(labels[0]) and top[0]["score"] > 0.5


def test_predict_reports_unreadable_files_and_fails(run_cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    code, _, err = run_cli(
        "predict", "--local", "digits-cnn", str(bad), str(tmp_path / "missing.png"), "-f", "onnxruntime"
    )
    assert code == 1
    assert "bad.png: error: cannot decode image" in err
    assert "missing.png: error:" in err


def test_evaluate_json_has_the_promised_fields(run_cli, tmp_path: Path) -> None:
    predictions = tmp_path / "predictions.jsonl"
    code, out, err = run_cli(
        "evaluate",
        "--local",
        "digits-cnn",
        "-f",
        "onnxruntime",
        "--dataset",
        "digits-png",
        "--batch-size",
        "50",
        "--limit",
        "200",
        "--predictions",
        str(predictions),
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    for key in ("model", "framework", "dataset", "items", "errors", "top1", "top5", "throughput_items_per_s"):
        assert key in result
    assert set(result["latency_ms"]) >= {"p50", "p90", "p99", "trimmed_mean"}
    assert (result["model"], result["framework"], result["dataset"], result["items"]) == (
        "digits-cnn",
        "onnxruntime",
        "digits-png",
        200,
    )
    lines = predictions.read_text().splitlines()
    assert len(lines) == 200 and "top_k" in json.loads(lines[0])["outputs"]["logits"]


def test_evaluate_table_output(run_cli) -> None:
    code, out, err = run_cli(
        "evaluate", "--local", "digits-cnn", "-f", "onnxruntime", "--dataset", "digits", "-n", "64"
    )
    assert code == 0, err
    assert "top-1" in out and "p99" in out and "throughput" in out


def test_user_errors_are_one_line_and_non_zero(run_cli, tmp_path: Path) -> None:
    cases = [
        (("evaluate", "--local", "no-such-model", "--dataset", "digits"), "unknown model 'no-such-model'"),
        (("evaluate", "--local", "digits-cnn", "--dataset", "digits"), "pick one with --framework"),
        (("evaluate", "--local", "digits-cnn", "-f", "caffe", "--dataset", "digits"), "has no caffe manifest"),
        (("evaluate", "--local", "digits-cnn", "-f", "onnxruntime", "--dataset", "nope"), "unknown dataset 'nope'"),
        (
            ("evaluate", "--local", "digits-cnn", "-f", "onnxruntime", "--dataset", "digits", "--device", "tpu"),
            "unknown device 'tpu'",
        ),
        (
            ("evaluate", "--local", "digits-cnn", "-f", "onnxruntime", "--dataset", str(tmp_path / "x.txt")),
            "does not exist",
        ),
    ]
    for args, message in cases:
        code, _, err = run_cli(*args)
        assert code == 1, args
        assert message in err and "Traceback" not in err, (args, err)
    predictions = tmp_path / "out.jsonl"
    code, _, _ = run_cli(
        "evaluate", "--local", "digits-cnn", "-f", "onnxruntime", "--dataset", "nope", "--predictions", str(predictions)
    )
    assert code == 1 and not predictions.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    code, _, err = run_cli(
        "evaluate",
        "--local",
        "digits-cnn",
        "-f",
        "onnxruntime",
        "-d",
        "digits",
        "--predictions",
        "/no/such/dir/p.jsonl",
    )
    assert code == 2 and "--predictions" in err and "/no/such/dir" in err


def test_errors_in_a_fresh_process_print_no_traceback(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    # A PNG header claiming 50000 x 50000 pixels: refused before any pixel is allocated.
    bomb.write_bytes(
        bytes.fromhex("89504e470d0a1a0a0000000d49484452") + (50000).to_bytes(4, "big") * 2 + b"\x08\x00\x00\x00\x00"
    )
    result = run_carml_process(
        "predict", "--local", "digits-cnn", "-f", "onnxruntime", str(bomb), env={"CARML_CACHE_DIR": str(tmp_path / "c")}
    )
    assert result.returncode == 1
    assert "cannot decode image" in result.stderr and "Traceback" not in result.stderr
    result = run_carml_process(
        "evaluate", "--local", "digits-cnn", "-d", "digits", env={"CARML_CACHE_DIR": str(tmp_path / "c")}
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: model 'digits-cnn' is published for onnxruntime, pytorch, tensorflow; pick one with --framework"
    ]


@pytest.mark.skipif(_onnxruntime_has_cuda(), reason="this machine has CUDA: the request would succeed")
def test_asking_for_cuda_without_it_is_refused(run_cli) -> None:
    code, _, err = run_cli("evaluate", "--local", "digits-cnn", "-f", "onnxruntime", "-d", "digits", "--device", "cuda")
    assert code == 1 and "CUDA was requested but this onnxruntime has no CUDA provider" in err


def test_usage_errors_exit_2(run_cli) -> None:
    code, _, err = run_cli("evaluate", "--local", "digits-cnn", "--dataset", "digits", "--batch-size", "0")
    assert code == 2 and "batch-size" in err
