"""The chart data the job page draws: histogram bins, the warm-up rule, confusion cells, stage order."""

from __future__ import annotations

import numpy as np
from sqlalchemy import event

from carml.db.session import engine_for
from webapp.ui import charts


def test_histogram_bins_count_every_value_and_mark_percentiles() -> None:
    values = [1.0, 2.0, 2.5, 3.0, 10.0] * 20
    histogram = charts.histogram(values)
    assert histogram is not None and sum(histogram["counts"]) == histogram["count"] == 100
    assert len(histogram["counts"]) == 10  # about √n bins
    assert histogram["edges"][0] == 1.0 and histogram["edges"][-1] == 10.0
    assert np.isclose(histogram["p90"], np.percentile(values, 90))


def test_histogram_of_one_value_or_none() -> None:
    one = charts.histogram([4.0, 4.0])
    assert one is not None and one["counts"] == [2] and one["edges"][0] < 4.0 < one["edges"][1]
    assert charts.histogram([]) is None


def test_warmup_batches_are_left_out_per_shard_unless_they_are_all_there_is() -> None:
    rows = [(0, 50.0, True), (0, 1.0, False), (0, 2.0, False), (1, 60.0, True)]
    assert charts.timed_latencies(rows) == ([1.0, 2.0, 60.0], 1)


def test_confusion_cells_and_stages() -> None:
    confusion = charts.confusion(["a", "b"], {"classes": 2, "cells": [[0, 0, 3], [0, 1, 1], [1, 1, 2]]})
    assert confusion is not None and confusion["max"] == 3
    assert {"x": "b", "y": "a", "v": 1} in confusion["cells"] and len(confusion["cells"]) == 4  # the zero drawn too
    assert {"x": "a", "y": "b", "v": 0} in confusion["cells"]
    assert charts.confusion([], None) is None and charts.confusion(["a"], None) is None
    summaries = {"predict": {"count": 2, "mean": 2.0, "p50": 2.0, "p99": 3.0}, "load": {"count": 0}}
    assert charts.stages(summaries) == {"stages": ["predict"], "mean": [2.0], "p50": [2.0], "p99": [3.0]}


def test_the_jobs_list_reads_no_results_and_no_outputs(client, settings, finished_evaluation) -> None:
    statements: list[str] = []
    engine = engine_for(settings.database)

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement.lower())

    event.listen(engine, "before_cursor_execute", record)
    try:
        html = client.get("/jobs").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert finished_evaluation in html
    assert statements and not any(" results" in s or "output_objects" in s or "stage_timings" in s for s in statements)


def test_a_model_with_many_classes_draws_its_non_zero_cells_and_lists_its_most_frequent_mistakes() -> None:
    labels = [f"class-{i}" for i in range(1000)]
    counts = {"classes": 1000, "cells": [[0, 0, 7], [5, 9, 2], [3, 4, 5], [999, 0, 2], [8, 8, 1]]}
    confusion = charts.confusion(labels, counts)
    assert confusion is not None and len(confusion["cells"]) == 5 and confusion["max"] == 7  # not a million
    assert {"x": "class-4", "y": "class-3", "v": 5} in confusion["cells"]
    assert charts.top_confusions(labels, counts, 2) == [
        {"true": "class-3", "predicted": "class-4", "count": 5},
        {"true": "class-5", "predicted": "class-9", "count": 2},  # ties: by true class, then predicted
    ]
    assert charts.top_confusions(labels, None, 5) == []
