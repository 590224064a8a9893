"""Tracing: one OpenTelemetry trace per job, from the submitting process through the queue to the worker.

Spans are built from timings the pipeline measures anyway (never created inside the per-batch loop), kept
in the `spans` table so SQL can read them, and exported over OTLP/HTTP when `CARML_OTLP_ENDPOINT` is set.

- `records`: a finished span as plain data, and its ids.
- `propagation`: W3C `traceparent` strings, which carry a job's trace across the queue.
- `submission`: the root `submit` span, written with the job row.
- `shard_spans`: a shard's spans (queue, shard, batch, stage, operator) from its batch timings.
- `shard_trace`: what a worker does to trace one shard.
- `store`: writing spans to the database and reading a job's trace back.
- `export`: the per-process OTLP exporter.
"""
