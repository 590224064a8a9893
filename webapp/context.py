"""What request handlers share: the app's settings and its enqueuer (the Celery one is built on first use)."""

from __future__ import annotations

import threading

from flask import current_app

from carml.jobs.service import Enqueue
from carml.settings import Settings

SETTINGS_KEY = "carml"
ENQUEUE_KEY = "carml.enqueue"


class LazyEnqueue:
    """The Celery enqueuer, created on the first job so that creating the app reaches no broker."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._enqueue: Enqueue | None = None
        self._lock = threading.Lock()

    def __call__(self, job_id: str, shard_index: int, hardware_tag: str) -> None:
        with self._lock:
            if self._enqueue is None:
                from worker.celery_app import celery_enqueuer, create_celery_app

                self._enqueue = celery_enqueuer(create_celery_app(self.settings))
        self._enqueue(job_id, shard_index, hardware_tag)


def settings() -> Settings:
    """The settings of the app handling this request."""
    return current_app.extensions[SETTINGS_KEY]


def enqueue() -> Enqueue:
    """The enqueuer of the app handling this request."""
    return current_app.extensions[ENQUEUE_KEY]
