"""The evaluation engine: a prefetch pipeline, metrics, latency summaries and the reproducibility record."""
