"""The job service: submit, follow and cancel jobs; run their shards; merge results exactly once.

Nothing here imports Celery: submitting takes an `Enqueue` callable, and the worker package calls
`execution.run_shard` from its thin task.
"""
