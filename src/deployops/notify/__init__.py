"""Notifications (MON-2, DEP-7): Slack incoming webhooks, e-mail over SMTP, PagerDuty Events v2,
and the router that decides who hears what.

The engine builds one router from the ``notifications:`` section and calls ``notify`` (or
``submit`` to not wait); a channel that is down is retried, then recorded, never raised::

    from deployops.notify import Notice, build_router, store_recorder

    router = build_router(cfg, resolve=secret_store.get, clock=clock,
                          record=store_recorder(store, clock))
    router.notify(Notice(severity="critical", kind="deployment.failed",
                         title="web 1.4.0 failed in production", text="green never turned healthy",
                         deployment_id=dep.id, environment="production", service="web"))

See ``docs/notifications.md``.
"""

from __future__ import annotations

from deployops.notify._http import NotifyError
from deployops.notify.email import EmailNotifier
from deployops.notify.pagerduty import PagerDutyNotifier
from deployops.notify.router import (
    Delivery,
    DeliveryStatus,
    Notice,
    NotificationRouter,
    Recorder,
    build_router,
    store_recorder,
)
from deployops.notify.slack import SlackNotifier

__all__ = [
    "Delivery",
    "DeliveryStatus",
    "EmailNotifier",
    "Notice",
    "NotificationRouter",
    "NotifyError",
    "PagerDutyNotifier",
    "Recorder",
    "SlackNotifier",
    "build_router",
    "store_recorder",
]
