"""A performance scenario in this process (`carml evaluate --scenario ... --local`): the engine a worker runs,
on a predictor opened here, reported in the shape of an evaluation result plus the scenario's outcome."""

from __future__ import annotations

from typing import Any

from carml.evaluation.partial import summarize
from carml.evaluation.record import reproducibility_record
from carml.evaluation.runner import Progress, ShouldStop, result_header
from carml.evaluation.scenarios import ScenarioOptions, run_scenario
from carml.runs import open_local_run
from carml.settings import Settings


def run_scenario_model(
    settings: Settings,
    model: str,
    dataset: str,
    options: ScenarioOptions,
    *,
    framework: str | None = None,
    device: str | None = None,
    batch_size: int = 32,
    limit: int | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> dict[str, Any]:
    """Run `options.scenario` with a catalog model (or manifest file) on a dataset; returns the JSON-ready result."""
    run = open_local_run(settings, model, dataset, framework, device)
    loaded, opened, predictor, load_ms = run.model, run.dataset, run.predictor, run.load_ms
    with predictor:
        partial = run_scenario(
            predictor, opened, options, batch_size=batch_size, limit=limit, progress=progress, should_stop=should_stop
        )
    summary = summarize([partial])
    outcome = partial.scenario or {}
    return {
        **result_header(loaded, predictor.framework, opened.name, predictor.device, batch_size),
        "items": summary["items"],
        "errors": summary["errors"],
        "error_items": summary["error_items"],
        "top1": summary["top1"],
        "top5": summary["top5"],
        "model_load_ms": load_ms,
        "stages_ms": summary["stages_ms"],
        "scenario_outcome": outcome,
        "reproducibility": reproducibility_record(
            framework=predictor.framework,
            framework_version=predictor.availability().version,
            device=predictor.device,
            manifest_digest=loaded.digest,
            dataset_digest=opened.digest,
            batch_size=batch_size,
            seed=options.seed,
            extra={"scenario": options.scenario, "scenario_settings": outcome.get("settings")},
        ),
    }
