"""CarML's Celery workers: queues by hardware tag, thin tasks calling `carml.jobs.execution`.

Importing this package connects to nothing; the Celery app is created by a factory.
"""
