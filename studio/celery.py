"""The Celery application. Configuration lives in Django settings under ``CELERY_*``."""

import os

from celery import Celery, Task, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.base")

app = Celery("flowgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Liveness: the worker touches WORKER_HEARTBEAT_PATH while it consumes (studio/worker_health.py).
# By name: the probe runs that module as a script, which must not have imported it first.
app.steps["consumer"].add("studio.worker_health:Heartbeat")


@signals.worker_process_init.connect
def freeze_long_lived_objects(**_: object) -> None:
    """A pool process, forked and set up: its start-up objects leave the garbage
    collector's walks (``studio/long_lived.py``)."""
    from studio.long_lived import freeze_start_up_objects

    freeze_start_up_objects()


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_old_database_connections(task: Task, **_: object) -> None:
    """Around each task, as Django does around each request: drop a connection that broke
    or outlived CONN_MAX_AGE, keep a healthy one (settings: CELERY_DB_REUSE_MAX). An eager
    task runs inside its caller's transaction, whose connection must stay."""
    if getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
