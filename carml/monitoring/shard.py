"""Sampling one shard of a job: started before its items run, stopped once they have, summarised for the merge."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from carml.errors import CarmlError
from carml.evaluation.partial import EvaluationPartial
from carml.monitoring.sampler import HardwareSampler, Sample, gpus_for_device
from carml.monitoring.summary import shard_summary
from carml.settings import Settings


@dataclass(frozen=True)
class ShardHardware:
    """What was read while a shard ran: the `hardware_samples` rows to write and the summary its partial carries."""

    worker_id: str
    samples: list[Sample] = field(default_factory=list)
    summary: dict[str, Any] | None = None


class ShardSampler:
    """A `HardwareSampler` for one shard: the process always, and the GPU the model runs on when it is a CUDA one.

    Use as a context manager around the shard's run, so the thread stops even when the run fails;
    `finish(partial)` stops it as soon as the items are done and summarises against the timed window.
    """

    def __init__(self, settings: Settings, device: str | None, worker_id: str):
        if not settings.sample_interval_s > 0:
            raise CarmlError(f"CARML_SAMPLE_INTERVAL_S={settings.sample_interval_s}: expected more than 0 seconds")
        gpus = gpus_for_device(device, os.environ.get("CUDA_VISIBLE_DEVICES"))
        self.sampler = HardwareSampler(settings.sample_interval_s, gpus)
        self.worker_id = worker_id

    def __enter__(self) -> ShardSampler:
        self.sampler.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.sampler.stop()

    def finish(self, partial: EvaluationPartial) -> ShardHardware:
        """Stop sampling and summarise: energy over the partial's timed window, per its timed items."""
        samples = self.sampler.stop()
        summary = shard_summary(
            samples,
            self.sampler.gpus,
            timed_window=partial.timed_window,
            timed_items=partial.timed_items(),
            interval_s=self.sampler.interval_s,
            worker=self.worker_id,
            process_peak_rss_mib=self.sampler.process_peak_rss_mib,
        )
        return ShardHardware(self.worker_id, samples, summary)
