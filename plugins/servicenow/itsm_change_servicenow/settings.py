"""The ServiceNow platform's settings, declared once.

The registration (:mod:`.hooks`), the client's configuration, configuration errors,
``itsm-change plugins --settings`` and the README table all read :data:`SETTINGS`.
"""

from __future__ import annotations

from itsm_change_sdk.settings import TIMEOUT, PluginSettings, Setting

__all__ = ["PLATFORM_NAME", "SECRETS", "SETTINGS"]

PLATFORM_NAME = "servicenow"

SETTINGS = PluginSettings(PLATFORM_NAME, (
    Setting("instance_url", "https://<instance>.service-now.com, no path", required=True),
    Setting("auth", "how to sign in", default="basic",
            choices=("basic", "oauth_password", "oauth_client_credentials")),
    Setting("username", "API user (basic and oauth_password)"),
    Setting("password", "the API user's password", secret=True),
    Setting("client_id", "OAuth Application Registry client id (OAuth modes)"),
    Setting("client_secret", "OAuth Application Registry client secret", secret=True),
    Setting("task_table", "where training, acknowledgement and feedback tasks go",
            default="vtb_task"),
    Setting("correlation_field", "column holding the correlation key; may be a u_ column",
            default="correlation_id"),
    Setting("announcement_table", "Service Portal announcements", default="announcement"),
    Setting("announcement_audience_field", "column on the announcement table that receives "
            "the audience groups' sys_ids (comma-separated), e.g. a u_audience glide_list"),
    Setting("webhook_secret", "shared with the Business Rules (X-ITSM-Change-Secret)",
            secret=True),
    Setting("page_size", "rows per Table API page (1 to 10000)", type=int, default=500),
    TIMEOUT,
    Setting("survey_answers", "also collect answers from ServiceNow Surveys (best effort)",
            type=bool, default=False),
))

SECRETS = SETTINGS.secrets
