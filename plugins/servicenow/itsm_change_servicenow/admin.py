"""``doctor`` (URL, credentials, table access, columns) and ``install`` (the event rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from itsm_change_sdk.errors import (
    APIError,
    AuthenticationError,
    ConnectError,
    HTTPStatusError,
    PermissionDenied,
    ResponseDecodeError,
    TransportError,
)
from itsm_change_sdk.model import Check, CheckStatus, InstallStep, Program
from itsm_change_sdk.schema.platform_checks import check_value, filter_places, filters_ok

from . import mapping
from .query import Query
from .settings import PLATFORM_NAME as P
from .webhook import SECRET_HEADER

if TYPE_CHECKING:
    from .client import ServiceNowPlatform

__all__ = ["check_filters", "doctor", "install"]

WRITE_ROLES = ("admin", "itil", "sn_request_write")
REST_MESSAGE = "itsm-change webhook"
RULE_RECORD = "itsm-change: task events"
RULE_JOURNAL = "itsm-change: journal events"
SECRET_PROPERTY = "itsm_change.webhook_secret"


def _fields(platform: ServiceNowPlatform) -> dict[str, tuple[str, ...]]:
    """Every column the plugin reads, writes or queries, by the table that defines it."""
    task = ("short_description", "description", "assigned_to", "due_date", "state",
            "closed_at", "correlation_id", "correlation_display", "work_notes", "number",
            "active", "sys_class_name", "assignment_group", "business_service", "priority",
            "contact_type", "opened_at", "reassignment_count")
    announcement: tuple[str, ...] = ("title", "summary", "from", "to", "active")
    if platform.audience_field:
        announcement += (platform.audience_field,)
    fields = {
        "task": task,
        "incident": ("category", "reopen_count", "resolved_at", "caller_id"),
        "sys_journal_field": ("element", "element_id", "name", "value"),
        "sys_user_grmember": ("user", "group"),
        "sys_user_group": ("name",),
        "sys_user": ("user_name", "name", "email", "active"),
        platform.announcement_table: announcement,
    }
    if platform.correlation_field != "correlation_id":
        fields.setdefault(platform.task_table, ())
        fields[platform.task_table] += (platform.correlation_field,)
    return fields


def _check(name: str, status: CheckStatus, message: str, fix: str | None = None) -> Check:
    return Check(platform=P, name=name, status=status, message=message, fix=fix)


def doctor(platform: ServiceNowPlatform) -> list[Check]:
    api = platform.api
    checks: list[Check] = []
    try:
        me = api.first("sys_user", Query().raw("sys_id=javascript:gs.getUserID()", "sys_id"),
                       ("sys_id", "user_name"))
    except ResponseDecodeError:
        return [_check("url", CheckStatus.FAIL, f"{platform.instance_url} answered with a page, "
                       "not JSON", "set instance_url to https://<instance>.service-now.com "
                       "(no path) and use an account that may call REST APIs")]
    except (ConnectError, TransportError) as exc:
        return [_check("url", CheckStatus.FAIL, f"cannot reach {platform.instance_url}: {exc}",
                       "check instance_url, the network and any proxy")]
    except AuthenticationError as exc:
        return [_check("url", CheckStatus.OK, f"{platform.instance_url} answers"),
                _check("credentials", CheckStatus.FAIL, f"the credentials were refused: {exc}",
                       "check username/password (auth=basic) or client_id/client_secret "
                       "(oauth); a locked-out or inactive user is refused too")]
    except PermissionDenied as exc:
        return [_check("url", CheckStatus.OK, f"{platform.instance_url} answers"),
                _check("credentials", CheckStatus.OK, "the credentials were accepted"),
                _check("permission", CheckStatus.FAIL,
                       f"the API user may not read its own sys_user record: {exc}",
                       "give the API user the itil role (and web service access: the user "
                       "record's 'Web service access only' or the REST API ACLs)")]
    except HTTPStatusError as exc:
        return [_unhealthy(platform.instance_url, exc)]
    checks.append(_check("url", CheckStatus.OK, f"{platform.instance_url} answers with JSON"))
    user = (me or {}).get("user_name") or platform.username or "the API user"
    checks.append(_check("credentials", CheckStatus.OK, f"signed in as {user}"))
    tables = [platform.task_table, "task", "incident", "sc_request", "change_request",
              platform.announcement_table, "sys_journal_field", "sys_user", "sys_user_group",
              "sys_user_grmember", "sys_dictionary"]
    if platform.survey_answers:
        tables.append("asmt_metric_result")
    for table in dict.fromkeys(tables):
        try:
            api.first(table, Query().order_by("sys_id"), ("sys_id",))
            checks.append(_check(f"read {table}", CheckStatus.OK, f"{table} is readable"))
        except PermissionDenied:
            checks.append(_check(f"read {table}", CheckStatus.FAIL, f"{table} is not readable",
                                 f"give the API user a role that may read {table} (itil reads "
                                 "task tables; sys_dictionary and sys_journal_field usually "
                                 "need admin or a read ACL for the user)"))
        except APIError as exc:
            checks.append(_check(f"read {table}", CheckStatus.FAIL, str(exc),
                                 f"check that the table {table} exists on this instance"))
    checks.extend(_field_checks(platform))
    if me and me.get("sys_id"):
        checks.append(_role_check(platform, str(me["sys_id"])))
    else:
        checks.append(_check("write access", CheckStatus.WARN,
                             "roles not checked: the instance returned no sys_user record for "
                             "the API user (sys_id=javascript:gs.getUserID())",
                             "make sure the API user may read its own sys_user record and has "
                             "the itil role"))
    return checks


def _unhealthy(url: str, exc: HTTPStatusError) -> Check:
    """A 5xx (or other status) before any JSON: say what the page means, not only its code.

    A hibernating developer instance, an upgrade in progress or a failing proxy answer with an
    HTML page (often 502/503) rather than the REST API's JSON error.
    """
    status = exc.status_code
    page = "<" in exc.body or not exc.body
    what = "an HTML page" if page else "an error"
    if status is not None and status >= 500:
        return _check("url", CheckStatus.FAIL,
                      f"{url} answered {status} with {what} instead of the REST API: the "
                      "instance is hibernating (developer instances sleep when unused), "
                      "upgrading, or a proxy in between failed",
                      "open the URL in a browser (wake a developer instance at "
                      "https://developer.servicenow.com), check any proxy, then run doctor "
                      "again; if it persists, give the instance's admin the time of this check")
    return _check("url", CheckStatus.FAIL, f"{url} answered {status} with {what}: {exc}",
                  "set instance_url to https://<instance>.service-now.com (no path)")


def _field_checks(platform: ServiceNowPlatform) -> list[Check]:
    wanted = _fields(platform)
    names = sorted({*wanted, "task"})
    columns = sorted({c for cols in wanted.values() for c in cols})
    query = Query().any_of("name", names).any_of("element", columns).order_by("sys_id")
    try:
        rows = list(platform.api.select("sys_dictionary", query, ("name", "element")))
    except APIError as exc:
        return [_check("columns", CheckStatus.FAIL, f"cannot read sys_dictionary: {exc}",
                       "give the API user read access to sys_dictionary (admin, or a read ACL)")]
    present = {(str(r.get("name")), str(r.get("element"))) for r in rows}
    checks = []
    for table, cols in wanted.items():
        missing = [c for c in cols if (table, c) not in present and ("task", c) not in present]
        if missing:
            checks.append(_check(f"columns {table}", CheckStatus.FAIL,
                                 f"{table} lacks {', '.join(missing)}",
                                 f"create the column(s) on {table} or change the setting that "
                                 "names them (correlation_field, announcement_table, "
                                 "announcement_audience_field)"))
        else:
            checks.append(_check(f"columns {table}", CheckStatus.OK,
                                 f"{table} has {', '.join(cols)}"))
    for column in (platform.correlation_field, *([platform.audience_field]
                                                 if platform.audience_field else [])):
        platform.guard.confirmed.update((t, column) for t, c in present if c == column)
    return checks


def _role_check(platform: ServiceNowPlatform, user_id: str) -> Check:
    query = Query().eq("user", user_id).order_by("sys_id")
    try:
        roles = {str(r.get("role.name")) for r in platform.api.select(
            "sys_user_has_role", query, ("role.name",))}
    except APIError:
        return _check("write access", CheckStatus.WARN, "cannot read sys_user_has_role",
                      "make sure the API user has the itil role (writes to task tables and "
                      "work notes) and may create announcement records")
    if roles & set(WRITE_ROLES):
        return _check("write access", CheckStatus.OK, f"roles: {', '.join(sorted(roles))}")
    return _check("write access", CheckStatus.FAIL,
                  f"the API user has none of {', '.join(WRITE_ROLES)}",
                  f"grant the itil role (and write access to {platform.task_table} and "
                  f"{platform.announcement_table})")


def rule_script(platform: ServiceNowPlatform) -> str:
    field = platform.correlation_field
    return f"""(function executeRule(current, previous) {{
    var payload = {{
        kind: 'record',
        operation: current.operation(),
        table: current.getTableName(),
        sys_id: current.getUniqueValue(),
        number: current.getValue('number'),
        sys_updated_on: current.getValue('sys_updated_on'),
        sys_mod_count: current.getValue('sys_mod_count'),
        state: current.getValue('state'),
        previous_state: previous ? previous.getValue('state') : null,
        correlation_id: current.getValue('{field}'),
        correlation_display: current.getValue('correlation_display')
    }};
    var r = new sn_ws.RESTMessageV2('{REST_MESSAGE}', 'post');
    r.setRequestHeader('{SECRET_HEADER}', gs.getProperty('{SECRET_PROPERTY}'));
    r.setRequestBody(JSON.stringify(payload));
    r.executeAsync();
}})(current, previous);"""


def journal_script() -> str:
    return f"""(function executeRule(current, previous) {{
    if (current.getValue('element') != 'work_notes' && current.getValue('element') != 'comments')
        return;
    var author = new GlideRecord('sys_user');
    author.get('user_name', current.getValue('sys_created_by'));
    var payload = {{
        kind: 'journal',
        table: current.getValue('name'),
        sys_id: current.getValue('element_id'),
        sys_updated_on: current.getValue('sys_created_on'),
        entry: {{
            sys_id: current.getUniqueValue(),
            element: current.getValue('element'),
            value: current.getValue('value'),
            sys_created_on: current.getValue('sys_created_on'),
            sys_created_by: current.getValue('sys_created_by'),
            author_id: author.getUniqueValue()
        }}
    }};
    var r = new sn_ws.RESTMessageV2('{REST_MESSAGE}', 'post');
    r.setRequestHeader('{SECRET_HEADER}', gs.getProperty('{SECRET_PROPERTY}'));
    r.setRequestBody(JSON.stringify(payload));
    r.executeAsync();
}})(current, previous);"""


def _records(platform: ServiceNowPlatform, webhook_url: str) -> list[tuple[str, str, dict[str,
                                                                                           str]]]:
    """(table, name, values) for every record install creates, in creation order."""
    rule = {"when": "after", "active": "true", "advanced": "true", "action_insert": "true",
            "order": "1000"}
    return [
        ("sys_rest_message", REST_MESSAGE, {"name": REST_MESSAGE, "rest_endpoint": webhook_url}),
        ("sys_properties", SECRET_PROPERTY, {"name": SECRET_PROPERTY, "type": "password2",
                                             "value": platform.webhook_secret or ""}),
        ("sys_script", RULE_RECORD, {**rule, "name": RULE_RECORD, "collection": "task",
                                     "action_update": "true",
                                     "script": rule_script(platform)}),
        ("sys_script", RULE_JOURNAL, {**rule, "name": RULE_JOURNAL,
                                      "collection": "sys_journal_field",
                                      "script": journal_script()}),
    ]


def _instructions(platform: ServiceNowPlatform, table: str, name: str, values: dict[str, str],
                  webhook_url: str) -> str:
    if table == "sys_rest_message":
        return (f"System Web Services > Outbound > REST Message: create '{REST_MESSAGE}' with "
                f"endpoint {webhook_url}, and an HTTP method named 'post' (POST, same endpoint, "
                "header Content-Type: application/json).")
    if table == "sys_properties":
        return (f"sys_properties.list: create '{SECRET_PROPERTY}' of type password2 whose value "
                "is the webhook_secret configured for itsm-change (ITSM_CHANGE_SERVICENOW_"
                "WEBHOOK_SECRET).")
    on = values["collection"]
    events = "insert and update" if values.get("action_update") else "insert"
    return (f"System Definition > Business Rules: create '{name}' on table {on}, When: after, "
            f"{events}, Advanced, with this script (it sends with executeAsync, so the user's "
            f"transaction does not wait):\n\n{values['script']}")


def install(platform: ServiceNowPlatform, webhook_url: str | None, apply: bool,
            remove: bool) -> list[InstallStep]:
    if not webhook_url:
        return [InstallStep(platform=P, name="webhook", done=False,
                            message="no webhook URL given: ticket events are read by polling",
                            instructions="run 'itsm-change install --webhook-url "
                            "https://<host>/webhooks/servicenow' to send events instead")]
    steps: list[InstallStep] = []
    api = platform.api
    for table, name, values in _records(platform, webhook_url):
        text = _instructions(platform, table, name, values, webhook_url)
        try:
            existing = api.first(table, Query().eq("name", name), ("sys_id",))
            if remove:
                if existing is not None:
                    api.delete(table, str(existing["sys_id"]))
                steps.append(InstallStep(platform=P, name=name, done=True,
                                         message=f"removed {table} '{name}'"))
                continue
            if existing is not None and not apply:
                steps.append(InstallStep(platform=P, name=name, done=True,
                                         message=f"{table} '{name}' exists"))
                continue
            if not apply:
                steps.append(InstallStep(platform=P, name=name, done=False,
                                         message=f"{table} '{name}' is missing",
                                         instructions=text))
                continue
            if table == "sys_properties" and not platform.webhook_secret:
                steps.append(InstallStep(platform=P, name=name, done=False,
                                         message="webhook_secret is not configured",
                                         instructions=text))
                continue
            if existing is not None:
                api.update(table, str(existing["sys_id"]), values, ("sys_id",))
            else:
                created = api.create(table, values, ("sys_id",))
                if table == "sys_rest_message":
                    api.create("sys_rest_message_fn", {
                        "rest_message": str(created.get("sys_id")), "function_name": "post",
                        "http_method": "post", "rest_endpoint": webhook_url}, ("sys_id",))
            steps.append(InstallStep(platform=P, name=name, done=True,
                                     message=f"{table} '{name}' is in place"))
        except (PermissionDenied, AuthenticationError) as exc:
            steps.append(InstallStep(platform=P, name=name, done=False,
                                     message=f"the API user may not change {table}: "
                                     f"{exc.message}", instructions=text))
    return steps


def check_filters(platform: ServiceNowPlatform, program: Program) -> list[Check]:
    """The program's filters against the instance: a kind must name a ticket table the
    plugin reads (another kind is dropped and matches nothing), a category must be one of
    the tables' ``category`` choices, by value or by label (``sys_choice``)."""
    places = filter_places(program, P)
    kinds = sorted(mapping.TICKET_TABLES)
    checks: list[Check] = []
    for where, ticket_filter in places:
        for kind in ticket_filter.kinds:
            found = check_value(P, where, "kinds", kind, kinds, "a ticket kind ServiceNow "
                                "tickets have (incident, request, change)")
            if found is not None:
                checks.append(found)
        if not ticket_filter.categories:
            continue
        tables = list(dict.fromkeys(
            mapping.TICKET_TABLES[k.casefold()] for k in ticket_filter.kinds
            if k.casefold() in mapping.TICKET_TABLES)) or ["incident", "sc_request",
                                                           "change_request"]
        by_label = platform.category_choices(tables)
        values = set(by_label.values())
        labels = {label: value for label, value in by_label.items()
                  if label != value.casefold()}
        for category in ticket_filter.categories:
            value = labels.get(category.casefold())
            if value is not None and where.startswith("goal"):
                # Prompts' searches translate a label; goals' metrics compare the value
                # each ticket stores.
                checks.append(Check(
                    P, f"filters: {where}", CheckStatus.FAIL,
                    f"{where}: categories {category!r} is the label of the value {value!r}; "
                    "a goal compares the value tickets store, so it matches no ticket",
                    f"write categories: [{value}] in {where}'s filter"))
                continue
            found = check_value(P, where, "categories", category, values,
                                f"a category of {', '.join(tables)}", labels=labels)
            if found is not None:
                checks.append(found)
    return checks or [filters_ok(P, places)]
