"""The caps behind the corpus, checked where they act: the pixel cap on a worker, the tighter archive caps of
uploads, and filters that reach SQL only as bound parameters (so a SQL-ish value matches nothing)."""

from __future__ import annotations

import warnings

import pytest
from PIL import Image
from security.hostile_files import png, png_bomb
from support import MANIFESTS

from carml.artifacts import ArtifactCache
from carml.catalog import Catalog
from carml.images import oversized_image_reason
from carml.jobs.comparisons import list_comparisons
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.service import EvaluationRequest, list_jobs, submit_evaluation
from carml.jobs.upload_checks import class_name_reason, upload_limits
from carml.recommend import parse_constraints, recommend
from carml.reporting import run_report
from carml.runs import open_predictor
from carml.settings import Settings, load_settings
from predictors.preprocessing import ItemError

HOSTILE_VALUES = ("x' OR '1'='1", "digits-cnn' --", "1; DROP TABLE jobs; --", "' UNION SELECT * FROM users --")


def test_a_worker_refuses_images_over_its_pixel_cap(tmp_path) -> None:
    settings = Settings(cache_dir=tmp_path / "cache", image_max_pixels=100)
    loaded = Catalog.load((MANIFESTS,)).model("digits-cnn", "onnxruntime")
    predictor, _ = open_predictor(loaded, ArtifactCache(settings, confine_local_files=True), "cpu")
    try:
        assert predictor.preprocess("at the cap", png(10, 10)).inputs["image"].shape == (1, 8, 8)
        with pytest.raises(ItemError, match=r"11x10 = 110 pixels; at most 100 are accepted \(CARML_IMAGE_MAX_PIXELS\)"):
            predictor.preprocess("over the cap", png(11, 10))
    finally:
        predictor.close()


def test_the_pixel_cap_holds_when_pillow_warnings_are_errors() -> None:
    bomb = png_bomb(10_000, 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        reason = oversized_image_reason(bomb, 64_000_000)
    assert reason and "decompression bomb" in reason and "(CARML_IMAGE_MAX_PIXELS)" in reason
    assert oversized_image_reason(png(), 64_000_000) is None
    assert oversized_image_reason(b"RIFF....WAVE not an image", 64_000_000) is None  # for its reader to judge


def test_uploads_take_the_tighter_of_the_upload_and_archive_caps() -> None:
    defaults = upload_limits(load_settings({}))
    assert (defaults.max_bytes, defaults.bytes_setting) == (2 * 1024**3, "CARML_UPLOAD_MAX_EXPANDED_BYTES")
    assert (defaults.max_members, defaults.members_setting) == (100_000, "CARML_UPLOAD_MAX_MEMBERS")
    raised = upload_limits(load_settings({"CARML_UPLOAD_MAX_EXPANDED_BYTES": str(16 * 1024**3)}))
    assert (raised.max_bytes, raised.bytes_setting) == (8 * 1024**3, "CARML_ARCHIVE_MAX_BYTES")


@pytest.mark.parametrize(
    "name,refused",
    [("cat", False), ("-1", False), ("-0.5", False), ("=1+1", True), ("+SUM(A1)", True), ("@cmd", True)]
    + [("-cmd", True), ("\tx", True), ("a\x00b", True), ("x" * 201, True), ("chat\u00e9", False)],
)
def test_class_names_that_spreadsheets_or_pages_would_misread_are_refused(name: str, refused: bool) -> None:
    assert (class_name_reason(name) is not None) == refused


def test_filters_reach_sql_only_as_bound_parameters(settings: Settings) -> None:
    """Below the API's 400s: with a finished job in every table, SQL-ish filter values match nothing."""
    request = EvaluationRequest("digits-cnn", "digits", "onnxruntime", "cpu", limit=16, batch_size=8)
    job_id = submit_evaluation(settings, request, lambda *_: None)
    assert run_shard(settings, job_id, 0, "cpu-test@host", ModelCache()) == "succeeded"
    assert [job.id for job in list_jobs(settings, model="digits-cnn")] == [job_id]
    assert len(run_report(settings, "evaluation_summary", model="digits-cnn")) == 1
    assert len(recommend(settings, parse_constraints({"dataset": "digits"})).ranked) == 1

    for value in HOSTILE_VALUES:
        for column in ("model", "hardware_tag", "owner", "status"):
            assert list(list_jobs(settings, **{column: value})) == [], (column, value)
        assert run_report(settings, "evaluation_summary", model=value) == []
        assert run_report(settings, "hardware_comparison", hardware=value) == []
        assert recommend(settings, parse_constraints({"dataset": value})).ranked == []
        assert list_comparisons(settings, owner=value) == []

    # Nothing was dropped or changed on the way.
    assert [job.id for job in list_jobs(settings)] == [job_id]
    assert len(run_report(settings, "evaluation_summary")) == 1
