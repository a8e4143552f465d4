"""``itsm-change doctor`` and ``itsm-change install`` for Freshservice."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from itsm_change_sdk.errors import (
    APIError,
    AuthenticationError,
    ConnectError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ResponseDecodeError,
    TransportError,
)
from itsm_change_sdk.model import Check, CheckStatus, InstallStep, Program
from itsm_change_sdk.schema.platform_checks import check_value, filter_places, filters_ok

from .api import plan_limits
from .mapping import MANAGED_TAG, fs_time
from .settings import PLATFORM_NAME, SETTINGS
from .webhook import SECRET_HEADER, payload_template

if TYPE_CHECKING:
    from .client import FreshservicePlatform

__all__ = ["WORKFLOWS", "check_filters", "doctor", "install"]

TICKET_KINDS = ("incident", "service request")
"""Ticket types as tickets name them (``type``, lower-cased)."""

WORKFLOWS: tuple[tuple[str, str, str], ...] = (
    ("ticket_created", "Ticket is raised", "itsm-change: ticket raised"),
    ("ticket_updated", "Ticket is updated", "itsm-change: ticket updated"),
    ("note_added", "Note is added", "itsm-change: note added"),
)


def _check(name: str, status: CheckStatus, message: str, fix: str | None = None) -> Check:
    return Check(platform=PLATFORM_NAME, name=name, status=status, message=message, fix=fix)


def _read(platform: FreshservicePlatform, name: str, path: str, params: dict[str, Any],
          what: str, privilege: str) -> Check:
    try:
        platform.transport.get_json(path, params=params)
    except PermissionDenied:
        return _check(name, CheckStatus.FAIL, f"the agent may not {what}",
                      f"give the API key's agent a role with '{privilege}' "
                      "(Admin > Roles), or use another agent's key")
    except NotFound:
        return _check(name, CheckStatus.FAIL, f"{path} was not found",
                      "check that the account is on Freshservice API v2 and the domain is right")
    except APIError as exc:
        return _check(name, CheckStatus.FAIL, f"could not {what}: {exc}",
                      "run doctor again; if it persists, see the error above")
    return _check(name, CheckStatus.OK, f"the agent can {what}")


WRITE_FIX = ("give the API key's agent a role that can create and edit tickets, add private "
             "notes and tasks (Admin > Roles; scope: all tickets), or use a full-time agent's "
             "key with that role")


def _write_checks(platform: FreshservicePlatform, agent: dict[str, Any]) -> list[Check]:
    """Whether ``apply`` will be allowed to write, found without writing anything.

    A read-only key passes every read; ``apply`` then fails with 403 on its first write. An
    occasional agent writes only while holding a day pass. Whether the agent may create
    tickets is asked with an empty ticket: Freshservice checks the privilege before the
    fields, so a 403 means "may not" and a 400 (fields missing) means "may", and the empty
    ticket is never created.
    """
    checks: list[Check] = []
    if agent.get("occasional"):
        checks.append(_check(
            "writes", CheckStatus.FAIL,
            "the key belongs to an occasional agent, who can change tickets only while "
            "holding a day pass: apply needs to create tickets, notes and tasks at any time",
            "use the key of a full-time agent (Admin > Agents > convert to full-time)"))
    try:
        platform.transport.request("POST", "/api/v2/tickets", json={}, retry=False)
    except InvalidRequest:
        checks.append(_check("create tickets", CheckStatus.OK,
                             "the agent may create tickets (asked with an empty ticket, which "
                             "Freshservice refuses as incomplete: nothing was created)"))
    except PermissionDenied:
        checks.append(_check(
            "create tickets", CheckStatus.FAIL,
            "the key is read-only for tickets: every read passes, but apply would fail with "
            "403 on the first training ticket, task or note it writes", WRITE_FIX))
    except APIError as exc:
        checks.append(_check("create tickets", CheckStatus.WARN,
                             f"could not tell whether the agent may create tickets: {exc}",
                             "run doctor again; " + WRITE_FIX))
    else:
        checks.append(_check("create tickets", CheckStatus.OK, "the agent may create tickets"))
    checks.append(_check(
        "other writes", CheckStatus.WARN,
        "editing tickets, adding private notes and tasks, and announcements are not checked, "
        "because checking would write",
        "give the agent a role that can edit tickets and add notes and tasks; announcements "
        "need an admin role with 'Manage announcements'"))
    return checks


def doctor(platform: FreshservicePlatform) -> list[Check]:
    """Domain, key, the reads the plugin needs, and what cannot be checked without writing."""
    checks: list[Check] = []
    url = platform.base_url
    try:
        response = platform.transport.request("GET", "/api/v2/agents/me")
        me = platform.transport.json(response)
    except (ConnectError, TransportError) as exc:
        return [_check("domain", CheckStatus.FAIL, f"cannot reach {url}: {exc.message}",
                       "check the domain setting: the account name as in "
                       "https://<name>.freshservice.com (custom CNAMEs do not serve the API)")]
    except ResponseDecodeError:
        return [_check("domain", CheckStatus.FAIL, f"{url} answered, but not with JSON",
                       "set the domain to your https://<name>.freshservice.com address, not a "
                       "custom domain or a login page")]
    except AuthenticationError:
        return [
            _check("domain", CheckStatus.OK, f"{url} answers the Freshservice API"),
            _check("api key", CheckStatus.FAIL, "Freshservice refused the API key (401)",
                   "copy the key from Profile Settings > Your API Key of the agent the plugin "
                   f"acts as, and {SETTINGS.how_to_set('api_key')}"),
        ]
    except APIError as exc:
        return [_check("domain", CheckStatus.FAIL, f"{url}: {exc}",
                       "check the domain setting and that the account is active")]
    checks.append(_check("domain", CheckStatus.OK, f"{url} answers the Freshservice API"))
    agent = me.get("agent", {}) if isinstance(me, dict) else {}
    who = " ".join(str(agent.get(k) or "") for k in ("first_name", "last_name")).strip()
    checks.append(_check("api key", CheckStatus.OK,
                         f"the key belongs to agent {who or agent.get('id')} "
                         f"({agent.get('email', 'no email')})"))

    total = response.headers.get("X-Ratelimit-Total")
    limits = plan_limits(platform.plan)
    if total and limits and int(float(total)) != limits["total"]:
        checks.append(_check("rate limit", CheckStatus.WARN,
                             f"the account allows {total} calls/minute, but plan "
                             f"{platform.plan!r} means {limits['total']}",
                             "set the plan setting to the account's plan, or leave it unset"))
    elif total:
        checks.append(_check("rate limit", CheckStatus.OK,
                             f"{total} calls/minute; the plugin paces itself to stay under it"))

    since = fs_time(platform.now() - timedelta(days=1))
    checks.append(_read(platform, "list tickets", "/api/v2/tickets",
                        {"per_page": 1, "updated_since": since}, "list tickets",
                        "View tickets"))
    checks.append(_read(platform, "agent groups", "/api/v2/agent_groups", {"per_page": 1},
                        "read agent groups", "View agent groups"))
    checks.append(_read(platform, "agents", "/api/v2/agents", {"per_page": 1},
                        "read agents", "View agents"))
    checks.append(_read(platform, "announcements", "/api/v2/announcements",
                        {"per_page": 1, "state": "active"}, "read announcements",
                        "Manage announcements"))
    try:
        platform.transport.get_json("/api/v2/tickets/filter",
                                    params={"query": f"\"tag:'{MANAGED_TAG}'\"", "page": 1})
        checks.append(_check("tag lookup", CheckStatus.OK,
                             "tickets can be found by tag (used to avoid duplicates)"))
    except InvalidRequest:
        checks.append(_check("tag lookup", CheckStatus.WARN,
                             "this account's filter query does not accept tags; after a "
                             "timeout the plugin scans the last 30 days of tickets instead",
                             "nothing to do; lookups are slower and cost more calls"))
    except APIError as exc:
        checks.append(_check("tag lookup", CheckStatus.FAIL, f"the filter query failed: {exc}",
                             "give the agent 'View tickets' on all tickets"))
    if platform.parent_ticket is not None:
        checks.append(_read(platform, "training ticket",
                            f"/api/v2/tickets/{platform.parent_ticket}/tasks", {"per_page": 1},
                            f"read the tasks of ticket {platform.parent_ticket}",
                            "View tickets (and access to that ticket's group)"))
    checks.extend(_write_checks(platform, agent))
    if not platform.webhook_secret:
        checks.append(_check("webhook secret", CheckStatus.WARN,
                             "no webhook_secret is set, so webhooks will be refused",
                             "choose a long random value, put it in the workflow's header, "
                             f"and {SETTINGS.how_to_set('webhook_secret')}"))
    return checks


def _instructions(webhook_url: str | None, event: str, trigger: str, name: str,
                  remove: bool) -> str:
    if remove:
        return (f"Admin > Workflow Automator > open '{name}' > Deactivate (or Delete). The "
                "plugin cannot do this through the API.")
    url = webhook_url or "<the URL of itsm-change serve>/webhooks/freshservice"
    return "\n".join([
        "1. Admin > Workflow Automator > New Automator > Ticket.",
        f"2. Name it '{name}'; set the event to '{trigger}' (performed by: Anyone).",
        "3. Add no condition (the plugin re-reads the ticket and decides itself).",
        "4. Add an action: Trigger Webhook.",
        "   Request Type: POST",
        f"   Callback URL: {url}",
        "   Requires Authentication: No",
        f"   Custom Headers: {SECRET_HEADER}: <the value of "
        "ITSM_CHANGE_FRESHSERVICE_WEBHOOK_SECRET>",
        "   Encoding: JSON; Content: Advanced; paste this body:",
        payload_template(event),
        "5. Done, then Activate the automator.",
    ])


def install(platform: FreshservicePlatform, webhook_url: str | None, *, apply: bool,
            remove: bool) -> list[InstallStep]:
    """Freshservice's API cannot create workflow automators: each step is a manual one."""
    steps = []
    for event, trigger, name in WORKFLOWS:
        if remove:
            message = f"remove the workflow '{name}' by hand"
        elif apply:
            message = (f"the workflow '{name}' cannot be created through the Freshservice API; "
                       "create it by hand as below")
        else:
            message = f"a workflow '{name}' must send '{trigger}' events to itsm-change"
        steps.append(InstallStep(
            platform=PLATFORM_NAME, name=f"workflow: {event}", done=False, message=message,
            instructions=_instructions(webhook_url, event, trigger, name, remove),
        ))
    return steps


def _choice_values(choices: Any) -> list[str]:
    """The top-level values of a form field's ``choices`` (a list of objects or of strings,
    or an object keyed by value)."""
    if isinstance(choices, dict):
        return [str(k) for k in choices]
    values = []
    for choice in choices or []:
        value = choice.get("value") if isinstance(choice, dict) else choice
        if value not in (None, ""):
            values.append(str(value))
    return values


def check_filters(platform: FreshservicePlatform, program: Program) -> list[Check]:
    """The program's filters against the account: a kind must be a ticket type, a category
    one of the ticket form's category choices, a group an agent group."""
    places = filter_places(program, PLATFORM_NAME)
    categories: list[str] = []
    if any(f.categories for _, f in places):
        for form_field in platform.api.ticket_fields():
            if form_field.get("name") == "category":
                categories = _choice_values(form_field.get("choices"))
    groups = list(platform.groups().values()) if any(f.groups for _, f in places) else []
    checks: list[Check] = []
    for where, ticket_filter in places:
        for field, wanted, accepted, what in (
                ("kinds", ticket_filter.kinds, TICKET_KINDS, "a Freshservice ticket type"),
                ("categories", ticket_filter.categories, categories,
                 "a category on the ticket form"),
                ("groups", ticket_filter.groups, groups, "an agent group")):
            for value in wanted:
                found = check_value(PLATFORM_NAME, where, field, value, accepted, what)
                if found is not None:
                    checks.append(found)
    return checks or [filters_ok(PLATFORM_NAME, places)]
