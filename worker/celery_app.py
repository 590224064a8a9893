"""The Celery application: one queue per hardware tag, settings for long ML jobs.

Created by a factory from `Settings`, never at import: the web app, the CLI and the worker each build
the app for the broker they are configured with.
"""

from __future__ import annotations

from celery import Celery

from carml.settings import Settings, load_settings

QUEUE_PREFIX = "hw."


def queue_for(hardware_tag: str) -> str:
    """The queue a hardware tag's work is routed to."""
    return QUEUE_PREFIX + hardware_tag


def _transport_options(settings: Settings) -> dict[str, object]:
    # Redis/SQS redeliver an unacknowledged task after the visibility timeout: it must outlast the
    # longest job, or a long evaluation would be started twice.
    options: dict[str, object] = {"visibility_timeout": settings.job_time_limit_s * 2 + 600}
    if settings.broker == "filesystem://":
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        options.update(
            data_folder_in=str(folder / "queue"),
            data_folder_out=str(folder / "queue"),
            processed_folder=str(folder / "processed"),
            # Without it kombu keeps fanout/control exchanges in ./control, wherever the process started.
            control_folder=str(folder / "control"),
            store_processed=False,
            polling_interval=settings.broker_poll_interval_s,
        )
    return options


def create_celery_app(settings: Settings | None = None) -> Celery:
    """A Celery app for the configured broker, with the task module registered."""
    settings = settings or load_settings()
    app = Celery("carml", broker=settings.broker, include=["worker.tasks"])
    if settings.broker == "filesystem://":
        from worker.filesystem_queue import TRANSPORT

        app.conf.broker_transport = TRANSPORT  # messages written whole before a worker can see them
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # results live in the database, not in a result backend
        # Long ML tasks: take one at a time, acknowledge only when done, and give the task back to the
        # queue when the process running it dies (OOM, SIGKILL), so no shard is lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # The shard stops itself at the job time limit, between batches; these only catch a batch that hangs.
        task_soft_time_limit=settings.job_time_limit_s + 30,
        task_time_limit=settings.job_time_limit_s + 90,
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        task_create_missing_queues=True,
        task_default_queue=queue_for("cpu"),
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    app.carml_settings = settings  # type: ignore[attr-defined]
    return app


def celery_enqueuer(app: Celery):  # type: ignore[no-untyped-def]
    """An `Enqueue` for the job service: send a shard to its hardware tag's queue."""

    def enqueue(job_id: str, shard_index: int, hardware_tag: str) -> None:
        app.send_task("carml.run_shard", args=[job_id, shard_index], queue=queue_for(hardware_tag))

    return enqueue
