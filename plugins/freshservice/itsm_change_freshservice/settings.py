"""The Freshservice platform's settings, declared once.

The registration (:mod:`.hooks`), the client's configuration, configuration errors,
``itsm-change plugins --settings`` and the README table all read :data:`SETTINGS`.
"""

from __future__ import annotations

from itsm_change_sdk.settings import TIMEOUT, PluginSettings, Setting

__all__ = ["PLATFORM_NAME", "SECRETS", "SETTINGS"]

PLATFORM_NAME = "freshservice"

SETTINGS = PluginSettings(PLATFORM_NAME, (
    Setting("domain", "acme, acme.freshservice.com or https://acme.freshservice.com",
            required=True),
    Setting("api_key", "the agent's API key (sent as Basic auth <key>:X)", secret=True,
            required=True),
    Setting("training_mode", "one ticket per assignment, or tasks on training_ticket",
            default="ticket", choices=("ticket", "task")),
    Setting("training_ticket", "with training_mode = task: the ticket the tasks hang on "
            "(1234, #SR-1234)"),
    Setting("requester_email", "requester of the tickets the plugin creates (default: the "
            "assigned agent)"),
    Setting("plan", "starter, growth, pro or enterprise: paces the per-endpoint sub-limits"),
    Setting("webhook_secret", "the X-ITSM-Change-Secret header the workflows send; without "
            "it every webhook is refused", secret=True),
    Setting("page_size", "records per page, 1 to 100", type=int, default=100),
    Setting("write_concurrency", "notes, tickets and tasks in flight at once within one "
            "write call, 1 to 32 (Freshservice has no bulk endpoint)", type=int, default=4),
    TIMEOUT,
    Setting("include_stats", "add include=stats to ticket reads (resolution times; costs "
            "API credits)", type=bool, default=True),
    Setting("workspace_id", "multi-workspace accounts: the workspace to read (default: the "
            "primary one)"),
))

SECRETS = SETTINGS.secrets
