"""Workers name their hardware: tags from GPU names, `cpu` without NVIDIA, one process per GPU."""

from __future__ import annotations

import pytest

from carml import hardware
from worker.celery_app import create_celery_app, queue_for
from worker.main import per_gpu_environments, resolve_hardware_tag


@pytest.mark.parametrize(
    "name,tag",
    [
        ("NVIDIA H100 80GB HBM3", "nvidia-h100"),
        ("NVIDIA H200", "nvidia-h200"),
        ("NVIDIA A100-SXM4-40GB", "nvidia-a100"),
        ("Tesla T4", "nvidia-t4"),
        ("NVIDIA GeForce RTX 4090", "nvidia-rtx-4090"),
    ],
)
def test_gpu_names_become_tags(name: str, tag: str) -> None:
    assert hardware.tag_for_gpu(name) == tag


def test_auto_is_cpu_without_nvidia_and_explicit_tags_pass_through() -> None:
    expected = hardware.tag_for_gpu(hardware.gpus()[0]["name"]) if hardware.gpus() else "cpu"
    assert resolve_hardware_tag("auto") == expected
    assert resolve_hardware_tag("cpu-8-threads") == "cpu-8-threads"


def test_one_environment_per_gpu() -> None:
    envs = per_gpu_environments(3, {"CARML_HOME": "/x"})
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1", "2"]
    assert all(e["CARML_HOME"] == "/x" for e in envs)


def test_celery_is_configured_for_long_jobs(tmp_path) -> None:
    from carml.settings import load_settings

    settings = load_settings({"CARML_HOME": str(tmp_path), "CARML_JOB_TIME_LIMIT_S": "3600"})
    conf = create_celery_app(settings).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert 3600 < conf.task_soft_time_limit < conf.task_time_limit
    assert conf.broker_transport_options["visibility_timeout"] > 3600
    assert conf.broker_transport_options["polling_interval"] == settings.broker_poll_interval_s
    assert queue_for("nvidia-h100") == "hw.nvidia-h100"
