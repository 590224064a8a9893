"""Building a shard's spans from batch timings: where each stage goes, batches lacking starts, operators."""

from __future__ import annotations

from carml.tracing.propagation import TraceParent, parse_traceparent
from carml.tracing.shard_spans import ShardTraceContext, Window, shard_spans
from predictors.profiling import OperatorEvent

MS = 1_000_000  # nanoseconds
T0 = 1_800_000_000 * 1_000_000_000  # an epoch time, in ns
PARENT = TraceParent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")


def _context(max_spans: int = 1000) -> ShardTraceContext:
    attributes = {"model": "m", "framework": "f", "batch_size": 2, "hardware_tag": "cpu", "worker": "w"}
    return ShardTraceContext(PARENT, 3, attributes, T0 - 50 * MS, T0, max_spans)


def _ms(record) -> tuple[float, float]:
    """(start, end) in ms after T0, to the microsecond: starts come as float epoch seconds (~0.2 µs precise)."""
    return round((record.start_ns - T0) / MS, 3), round((record.end_ns - T0) / MS, 3)


def _by_name(records: list) -> dict[str, list]:
    found: dict[str, list] = {}
    for record in records:
        found.setdefault(record.name, []).append(record)
    return found


def test_stages_are_placed_from_their_starts_and_decode_is_cut_out_of_preprocess() -> None:
    batch = {
        "size": 2,
        "warmup": False,
        "load": 1.0,
        "decode": 3.0,
        "preprocess": 5.0,  # decode included
        "predict": 4.0,
        "postprocess": 0.5,
        "started": {"load": (T0 + 10 * MS) / 1e9, "predict": (T0 + 30 * MS) / 1e9},
    }
    records = shard_spans(_context(), [batch], ended_ns=T0 + 100 * MS)
    spans = {r.name: r for r in records}
    # Reading, then decoding, then the rest of preprocessing, end to end from when reading began.
    assert [_ms(spans[name]) for name in ("fetch", "decode", "preprocess")] == [(10, 11), (11, 14), (14, 16)]
    # The batch waited for the model between 16 and 30 ms; postprocess follows predict.
    assert [_ms(spans[name]) for name in ("predict", "postprocess")] == [(30, 34), (34, 34.5)]
    assert _ms(spans["batch"]) == (10, 34.5)
    assert spans["queue"].start_ns == T0 - 50 * MS and spans["queue"].end_ns == spans["shard"].start_ns == T0
    assert {r.trace_id for r in records} == {PARENT.trace_id}
    assert spans["shard"].parent_span_id == spans["queue"].parent_span_id == PARENT.span_id
    assert spans["predict"].parent_span_id == spans["batch"].span_id and spans["predict"].batch_index == 0
    assert spans["predict"].all_attributes["model"] == "m" and spans["predict"].shard_index == 3


def test_batches_without_starts_or_stages_give_what_can_be_placed() -> None:
    timed_from_predict = {
        "size": 1,
        "warmup": True,
        "predict": 2.0,
        "postprocess": 1.0,
        "started": {"predict": T0 / 1e9},
    }
    untimed = {"size": 1, "warmup": False, "load": 1.0, "preprocess": 1.0, "predict": 1.0, "postprocess": 1.0}
    stopped = {"size": 1, "warmup": False, "load": 1.0, "postprocess": 1.0, "started": {"load": T0 / 1e9}}
    records = shard_spans(_context(), [timed_from_predict, untimed, stopped], ended_ns=T0 + MS)
    batches = {
        r.batch_index: [s.name for s in records if s.batch_index == r.batch_index] for r in records if r.name == "batch"
    }
    assert batches == {0: ["batch", "predict", "postprocess"], 2: ["batch", "fetch"]}
    (shard,) = [r for r in records if r.name == "shard"]
    assert shard.all_attributes == {**_context().attributes, "batches": 3, "spans_dropped": 0}


def test_operators_go_under_the_predict_span_they_ran_in_nested_as_recorded() -> None:
    def batch(start_ms: int) -> dict:
        started = {"load": (T0 + start_ms * MS) / 1e9, "predict": (T0 + (start_ms + 10) * MS) / 1e9}
        return {
            "size": 2,
            "warmup": False,
            "load": 1.0,
            "preprocess": 1.0,
            "predict": 5.0,
            "postprocess": 1.0,
            "started": started,
        }

    events = [
        OperatorEvent("forward", T0 + 31 * MS, T0 + 34 * MS),
        OperatorEvent("aten::linear", T0 + 32 * MS, T0 + 33 * MS, parent=0),
        OperatorEvent("forward", T0 + 11 * MS, T0 + 14 * MS),
        OperatorEvent("stray", T0 + 90 * MS, T0 + 91 * MS),  # in no predict span: left out
    ]
    records = shard_spans(_context(), [batch(0), batch(20)], ended_ns=T0 + 100 * MS, operators=events)
    spans = _by_name(records)
    predict = {r.batch_index: r for r in spans["predict"]}
    forwards = {r.batch_index: r for r in spans["forward"]}
    assert forwards[0].parent_span_id == predict[0].span_id and forwards[1].parent_span_id == predict[1].span_id
    (linear,) = spans["aten::linear"]
    assert linear.parent_span_id == forwards[1].span_id and linear.attributes["operator"] is True
    assert "stray" not in spans


def test_the_cap_counts_operators_and_keeps_fixed_spans() -> None:
    batch = {"size": 1, "warmup": False, "predict": 1.0, "postprocess": 1.0, "started": {"predict": T0 / 1e9}}
    records = shard_spans(
        _context(max_spans=4),
        [batch, batch],
        ended_ns=T0 + MS,
        model_load=Window(T0, T0 + MS),
        store=Window(T0, T0 + MS),
    )
    assert sorted(r.name for r in records) == ["load_model", "queue", "shard", "store"]
    (shard,) = [r for r in records if r.name == "shard"]
    assert shard.attributes["spans_dropped"] == 2 * 3


def test_traceparent_round_trip_and_refusals() -> None:
    assert parse_traceparent(PARENT.header()) == PARENT
    assert PARENT.header() == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    for bad in (
        None,
        12,
        "",
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ):
        assert parse_traceparent(bad) is None
