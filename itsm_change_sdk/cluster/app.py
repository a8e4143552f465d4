"""The Celery application: ``celery -A itsm_change_sdk.cluster.app worker`` or, with the
programs loaded, ``itsm-change worker PROGRAM...``.

Every task is acknowledged only after it finished (``acks_late``), and a task whose worker
process died is handed back to the queue (``task_reject_on_worker_lost``); a worker that
vanished with its task is found out by the broker after ``visibility_timeout``, and the task
is delivered again. The ledger's claims make a second delivery write nothing twice.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

from .settings import ClusterSettings

__all__ = ["app", "celery_config", "make_app"]


def celery_config(settings: ClusterSettings) -> dict[str, Any]:
    transport = {
        "visibility_timeout": settings.visibility_timeout,
        "global_keyprefix": f"{settings.prefix}:",
        # Look for tasks of vanished workers about as often as a tenth of the timeout.
        "unacked_restore_interval": max(1, min(10, int(settings.visibility_timeout / 10))),
        "unacked_restore_throttle": 1,
    }
    return {
        "broker_url": settings.broker,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        # One task at a time per process: a long batch never holds others back unstarted.
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_enable_remote_control": True,
    }


def make_app(settings: ClusterSettings | None = None) -> Celery:
    settings = settings or ClusterSettings.from_env()
    celery = Celery("itsm_change", include=["itsm_change_sdk.cluster.tasks"])
    celery.conf.update(celery_config(settings))
    return celery


app = make_app()


def _fresh_process(**_kwargs: Any) -> None:
    """A forked pool process must not share its parent's database or Redis connections, and
    every process draws its platform calls from the cluster's shared budget."""
    from .context import reset

    reset()


worker_init.connect(_fresh_process, weak=False)
worker_process_init.connect(_fresh_process, weak=False)
