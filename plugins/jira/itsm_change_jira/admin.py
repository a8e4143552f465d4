"""``doctor`` and ``install`` for a Jira site: checks with plain fixes, and the admin webhook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from itsm_change_sdk.errors import (
    APIError,
    AuthenticationError,
    HTTPStatusError,
    NotFound,
    PermissionDenied,
    TransportError,
)
from itsm_change_sdk.model import Check, CheckStatus, InstallStep, Program
from itsm_change_sdk.schema.platform_checks import check_value, filter_places, filters_ok

from . import query as jql
from .settings import SETTINGS

if TYPE_CHECKING:
    from .client import JiraPlatform

__all__ = ["PERMISSIONS", "WEBHOOK_EVENTS", "check_filters", "doctor", "install"]

PERMISSIONS: dict[str, str] = {
    "BROWSE_PROJECTS": "read issues and comments",
    "CREATE_ISSUES": "create training, acknowledgement and feedback issues",
    "ASSIGN_ISSUES": "assign those issues to people",
    "ASSIGNABLE_USER": "be assignable (needed by some workflows)",
    "EDIT_ISSUES": "update issues in place and label retired ones",
    "TRANSITION_ISSUES": "close retired issues",
    "ADD_COMMENTS": "post notes and prompts",
    "EDIT_OWN_COMMENTS": "update announcements in place",
}
REQUIRED = frozenset(PERMISSIONS) - {"ASSIGNABLE_USER", "EDIT_OWN_COMMENTS"}
WEBHOOK_EVENTS = ("jira:issue_created", "jira:issue_updated", "comment_created")


def _check(name: str, status: CheckStatus, message: str, fix: str | None = None) -> Check:
    return Check(platform="jira", name=name, status=status, message=message, fix=fix)


def doctor(platform: JiraPlatform) -> list[Check]:
    """Site, credentials, then permissions; stops after a refused login (never loops)."""
    api = platform.api
    config = platform.config
    checks: list[Check] = []
    try:
        info = api.server_info()
        checks.append(_check("site", CheckStatus.OK,
                             f"{config.site_url} answers ({info.get('deploymentType', 'Cloud')}"
                             f", build {info.get('buildNumber', '?')})"))
    except AuthenticationError:
        # Jira checks the credentials sent with any request, the anonymous serverInfo
        # included: a 401 here means the site is right and the token is not.
        checks.append(_check("site", CheckStatus.OK, f"{config.site_url} answers as Jira"))
        checks.append(_refused_login())
        return checks
    except PermissionDenied as exc:
        checks.append(_check("site", CheckStatus.OK, f"{config.site_url} answers as Jira"))
        checks.append(_check(
            "access", CheckStatus.FAIL, f"Jira refused this account or network: {exc}",
            "ask a site admin whether IP allowlisting or the account's product access "
            "blocks it (admin.atlassian.com > Security / Products)"))
        return checks
    except TransportError as exc:
        checks.append(_check(
            "site", CheckStatus.FAIL, f"cannot reach {config.site_url}: {exc.message}",
            "check site_url (https://<your-site>.atlassian.net, no path), the network and any "
            "proxy",
        ))
        return checks
    except (NotFound, HTTPStatusError, APIError) as exc:
        checks.append(_check(
            "site", CheckStatus.FAIL, f"{config.site_url} did not answer as Jira: {exc}",
            "set site_url to https://<your-site>.atlassian.net (no path) and check the network",
        ))
        return checks
    try:
        me = api.myself()
        checks.append(_check("credentials", CheckStatus.OK,
                             f"signed in as {me.get('displayName', '?')}"))
    except AuthenticationError:
        checks.append(_refused_login())
        return checks
    try:
        granted = api.my_permissions(config.project, list(PERMISSIONS)).get("permissions") or {}
    except NotFound:
        checks.append(_check(
            "project", CheckStatus.FAIL, f"project {config.project!r} is not visible",
            "set project to an existing project key and give the account Browse projects",
        ))
        return checks
    checks.append(_check("project", CheckStatus.OK, f"project {config.project} is visible"))
    for key, why in PERMISSIONS.items():
        have = bool((granted.get(key) or {}).get("havePermission"))
        status = CheckStatus.OK if have else (
            CheckStatus.FAIL if key in REQUIRED else CheckStatus.WARN)
        checks.append(_check(
            f"permission {key}", status,
            f"{'can' if have else 'cannot'} {why} in {config.project}",
            None if have else f"grant {key} to the account in the permission scheme of "
                              f"{config.project} (Project settings > Permissions)",
        ))
    if not config.webhook_secret:
        checks.append(_check(
            "webhook secret", CheckStatus.WARN, "no webhook_secret is set: webhooks are refused",
            f"{SETTINGS.how_to_set('webhook_secret')}, then run 'itsm-change install'",
        ))
    if not config.group_field:
        # Jira has no assignment group of its own: without the field no ticket names a
        # group, so no unit owns one, and prompts and per-unit metrics silently match none.
        checks.append(_check(
            "group field", CheckStatus.WARN,
            "no group_field is set: tickets carry no group, so no unit owns a ticket; prompts "
            "and per-unit metrics match nothing",
            "point group_field at the custom field that holds the ticket's team or assignment "
            f"group, e.g. customfield_10070: {SETTINGS.how_to_set('group_field')}",
        ))
    return checks


def _refused_login() -> Check:
    return _check(
        "credentials", CheckStatus.FAIL, "Jira refused the credentials (401)",
        "create a new API token at https://id.atlassian.com/manage-profile/security/"
        "api-tokens and set email + api_token (or re-authorise OAuth). Do not retry "
        "repeatedly: failed logins trigger a CAPTCHA that blocks the API until someone "
        "signs in through a browser",
    )


def _webhook_id(hook: dict[str, Any]) -> str:
    return str(hook.get("self", "")).rstrip("/").rsplit("/", 1)[-1]


def install(platform: JiraPlatform, webhook_url: str | None, apply: bool, remove: bool
            ) -> list[InstallStep]:
    """Describe, register or remove the admin webhook (found by name or URL first)."""
    config = platform.config
    name = config.webhook_name
    filter_jql = jql.in_("project", platform.config.search_projects)
    manual = (
        f"In Jira: Settings > System > WebHooks > Create a WebHook named {name!r} with URL "
        f"{webhook_url or '<your itsm-change serve URL>'}, a secret equal to webhook_secret, "
        f"JQL {filter_jql} and events: issue created, issue updated, comment created."
    )
    try:
        hooks = platform.api.webhooks()
    except PermissionDenied:
        return [InstallStep("jira", "webhook", False,
                            "only a Jira administrator can list and register admin webhooks",
                            manual)]
    existing = [h for h in hooks
                if h.get("name") == name or (webhook_url and h.get("url") == webhook_url)]
    if remove:
        for hook in existing:
            platform.api.delete_webhook(_webhook_id(hook))
        return [InstallStep("jira", "webhook", True,
                            f"removed {len(existing)} webhook(s) named {name!r}")]
    if existing:
        return [InstallStep("jira", "webhook", True,
                            f"webhook {name!r} is registered ({existing[0].get('url')})")]
    if not webhook_url:
        return [InstallStep("jira", "webhook", False, "no webhook URL given", manual)]
    if not apply:
        return [InstallStep("jira", "webhook", False,
                            f"webhook {name!r} to {webhook_url} would be registered", manual)]
    if not config.webhook_secret:
        return [InstallStep("jira", "webhook", False,
                            "set webhook_secret first: unsigned webhooks are refused", manual)]
    platform.api.create_webhook({
        "name": name,
        "url": webhook_url,
        "events": list(WEBHOOK_EVENTS),
        "filters": {"issue-related-events-section": filter_jql},
        "excludeBody": False,
        "secret": config.webhook_secret,
    })
    return [InstallStep("jira", "webhook", True, f"registered webhook {name!r} to {webhook_url}")]


def check_filters(platform: JiraPlatform, program: Program) -> list[Check]:
    """The program's filters against the ticket projects: a kind must be an issue type
    there (the search names it in ``issuetype in (...)``, and Jira refuses the whole query
    for one it lacks), a category should be a component (or it can only match a label), and
    a filter on groups needs ``group_field``."""
    places = filter_places(program, "jira")
    config = platform.config
    projects = list(config.ticket_projects or (config.project,))
    types: set[str] = set()
    components: set[str] = set()
    for key in projects:
        try:
            project = platform.api.project(key)
        except NotFound:
            return [_check("filters", CheckStatus.FAIL,
                           f"ticket project {key!r} is not visible to this account",
                           "set ticket_projects to project keys the account can browse")]
        types |= {str(t.get("name")) for t in project.get("issueTypes") or [] if t.get("name")}
        components |= {str(c.get("name")) for c in project.get("components") or []
                       if c.get("name")}
    where_types = f"an issue type in {', '.join(projects)}"
    checks: list[Check] = []
    for where, ticket_filter in places:
        for kind in ticket_filter.kinds:
            found = check_value("jira", where, "kinds", kind, types, where_types)
            if found is not None:
                checks.append(Check(found.platform, found.name, found.status,
                                    found.message.replace(
                                        "so it matches no ticket there",
                                        "and Jira refuses the whole search for it"),
                                    found.fix))
        for category in ticket_filter.categories:
            found = check_value("jira", where, "categories", category, components,
                                f"a component of {', '.join(projects)}",
                                status=CheckStatus.WARN)
            if found is not None:
                checks.append(Check(found.platform, found.name, found.status,
                                    found.message.replace("so it matches no ticket there",
                                                          "so only a label can match it"),
                                    found.fix))
        if ticket_filter.groups and not config.group_field:
            checks.append(_check(
                f"filters: {where}", CheckStatus.FAIL,
                f"{where}: filters on groups, but no group_field is set, so no ticket names a "
                "group and it matches nothing",
                "point group_field at the custom field that holds the ticket's team, e.g. "
                f"customfield_10070: {SETTINGS.how_to_set('group_field')}"))
    if program.prompts and any(u.platform == "jira" for u in program.units) \
            and not config.group_field:
        checks.append(_check(
            "filters: units", CheckStatus.FAIL,
            "the program prompts on units' tickets, but no group_field is set, so no unit "
            "owns a ticket and no prompt is ever posted",
            f"set group_field to the custom field holding the ticket's team: "
            f"{SETTINGS.how_to_set('group_field')}"))
    return checks or [filters_ok("jira", places)]
