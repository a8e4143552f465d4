"""A stateful fake of a ServiceNow instance's REST APIs on ``responses`` callbacks.

It answers as ServiceNow documents: ``{"result": ...}`` wrappers, ``{"link","value"}``
reference objects unless excluded, ``Link`` and ``X-Total-Count`` headers, the
``{"error": {"message","detail"}, "status": "failure"}`` error body, 429 with ``Retry-After``
and ``X-RateLimit-*``, the base64 Batch API, and ``/oauth_token.do`` (form bodies only). Like
a real instance, it silently ignores a query condition on a field the table does not have.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import responses
from itsm_change_servicenow import ServiceNowPlatform, client, mapping
from itsm_change_servicenow.client import announcement_sys_id
from itsm_change_servicenow.mapping import stored_key as real_stored_key

from itsm_change_sdk.http import RetryPolicy
from itsm_change_sdk.model import EffectKind, EffectRef, Person, Ticket, WebhookRequest
from itsm_change_sdk.testing import Capabilities, RemoteRecord

URL = "https://acme.service-now.com"
PASSWORD = "s3cret-Passw0rd"
CLIENT_SECRET = "cl1ent-s3cret-value"
WEBHOOK_SECRET = "hook-s3cret-value"

TASK_TABLES = ("task", "incident", "change_request", "sc_request", "vtb_task", "sc_task")
REFERENCES = {"assigned_to": "sys_user", "assignment_group": "sys_user_group",
              "business_service": "cmdb_ci_service", "user": "sys_user",
              "group": "sys_user_group", "caller_id": "sys_user", "role": "sys_user_role",
              "instance": "asmt_assessment_instance", "metric_type": "asmt_metric_type",
              "metric": "asmt_metric"}
TASK_COLUMNS = {"number", "short_description", "description", "assigned_to", "due_date", "state",
                "closed_at", "correlation_id", "correlation_display", "work_notes", "comments",
                "active", "sys_class_name", "assignment_group", "business_service", "priority",
                "contact_type", "opened_at", "reassignment_count", "caller_id", "requested_for"}
COLUMNS: dict[str, set[str]] = {
    "task": TASK_COLUMNS,
    "incident": {"category", "reopen_count", "resolved_at"},
    "announcement": {"title", "summary", "from", "to", "active"},
    "sys_journal_field": {"element", "element_id", "name", "value"},
    "sys_user": {"user_name", "name", "email", "active"},
    "sys_user_group": {"name"},
    "sys_user_grmember": {"user", "group"},
    "cmdb_ci_service": {"name"},
    "sys_user_role": {"name"},
    "sys_user_has_role": {"user", "role"},
    "sys_dictionary": {"name", "element"},
    "sys_script": {"name", "collection", "script", "when", "active"},
    "sys_rest_message": {"name", "rest_endpoint"},
    "sys_rest_message_fn": {"rest_message", "function_name"},
    "sys_properties": {"name", "value", "type"},
    # Assessments and Surveys: a survey (metric type), its questions (metrics), one taker's
    # instance and an answer per question.
    "asmt_metric_type": {"name"},
    "asmt_metric": {"name", "metric_type"},
    "asmt_assessment_instance": {"user", "metric_type", "state"},
    "asmt_metric_result": {"instance", "metric", "actual_value", "string_value"},
}
SYSTEM = {"sys_id", "sys_created_on", "sys_updated_on", "sys_created_by", "sys_mod_count",
          "sys_class_name"}
PREFIX = {"incident": "INC", "change_request": "CHG", "sc_request": "REQ", "vtb_task": "VTB",
          "task": "TASK", "sc_task": "SCTASK"}
COND = re.compile(r"^([a-z0-9_.]+?)(!=|>=|<=|=|>|<|IN|LIKE|STARTSWITH)(.*)$", re.S)


def sn_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class ServiceNowFake:
    """The test-side control of the fake instance (implements ``PlatformDouble``)."""

    name = "servicenow"
    capabilities = Capabilities(channels=frozenset({"task", "announcement", "ticket_note"}),
                                survey_answers=False, filter_checks=True)

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.rsps = rsps
        self.tables: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.clock = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
        self.newest = self.clock
        self.counter = itertools.count(1)
        self.max_page: int | None = None
        self.writes = 0
        self.requests = 0
        self.fail_writes: list[bool] = []
        self.refusals: list[tuple[int, str]] = []
        self.unservice_once: set[str] = set()
        self.fail_item_once: dict[str, tuple[int, str]] = {}
        self.throttle: list[float] = []
        self.errors: list[tuple[int, dict[str, Any] | str]] = []
        self.tokens: dict[str, datetime] = {}
        self.refresh_tokens: set[str] = set()
        self.token_requests: list[dict[str, Any]] = []
        self.keys: set[str] = set()
        self.api_user = self.add_person("Integration", "svc@example.com", user_name="svc_itsm")
        for table, cols in COLUMNS.items():
            for col in cols:
                self.insert("sys_dictionary", {"name": table, "element": col})
        base = re.compile(re.escape(URL) + r"/api/now/table/.*")
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            rsps.add_callback(method, base, callback=self._table_http)
        rsps.add_callback("POST", f"{URL}/api/now/v1/batch", callback=self._batch_http)
        rsps.add_callback("POST", f"{URL}/oauth_token.do", callback=self._token_http)

    # -- PlatformDouble -------------------------------------------------------------------

    def tick(self) -> datetime:
        """The instance's clock for a write: never behind anything already stored (tests add
        tickets at any time they like), so a write moves its record to the end of an
        ``ORDERBYsys_updated_on`` list, as on a real instance."""
        self.clock = max(self.clock, self.newest) + timedelta(seconds=1)
        return self.clock

    def insert(self, table: str, values: dict[str, Any], at: datetime | None = None) -> dict:
        if at is not None:
            self.newest = max(self.newest, at)
        when = sn_time(at or self.tick())
        sys_id = values.get("sys_id") or uuid.uuid4().hex
        record = {"sys_id": sys_id, "sys_created_on": when, "sys_updated_on": when,
                  "sys_created_by": values.pop("_by", "svc_itsm"), "sys_mod_count": "0",
                  "sys_class_name": table}
        if table in TASK_TABLES:
            record.update({"number": f"{PREFIX[table]}{next(self.counter):07d}", "state": "1",
                           "active": "true", "opened_at": when, "work_notes": "",
                           "comments": ""})
        for name, value in values.items():
            if name in ("work_notes", "comments"):
                continue
            record[name] = value
        self.tables[table][sys_id] = record
        self._journal(table, record, values, at)
        return record

    def _journal(self, table: str, record: dict, values: dict, at: datetime | None) -> None:
        for element in ("work_notes", "comments"):
            if values.get(element):
                self.insert("sys_journal_field", {
                    "element": element, "element_id": record["sys_id"], "name": table,
                    "value": values[element], "_by": values.get("_by", "svc_itsm")}, at)

    def add_person(self, name: str, email: str, user_name: str | None = None) -> Person:
        row = self.insert("sys_user", {"name": name, "email": email, "active": "true",
                                       "user_name": user_name or email.split("@")[0]})
        return Person(id=row["sys_id"], name=name, platform="servicenow", email=email)

    def add_group(self, name: str, members: list[Person]) -> str:
        group = self.insert("sys_user_group", {"name": name})
        for person in members:
            self.insert("sys_user_grmember", {"user": person.id, "group": group["sys_id"]})
        return name

    def add_ticket(self, *, title: str, opened_at: datetime, kind: str = "incident",
                   category: str | None = None, group: str | None = None,
                   channel: str | None = "portal", requester: Person | None = None,
                   **extra: Any) -> Ticket:
        table = {"incident": "incident", "request": "sc_request",
                 "change": "change_request"}.get(kind, kind)
        group_id = None
        if group:
            group_id = next((g["sys_id"] for g in self.tables["sys_user_group"].values()
                             if g["name"] == group), None) or self.add_group_id(group)
        if category:
            self._choice(table, category, category.title())
        row = self.insert(table, {
            "short_description": title, "category": category or "",
            "assignment_group": group_id or "",
            "contact_type": {"portal": "self-service"}.get(channel or "", channel or ""),
            "caller_id": requester.id if requester else "", "priority": "3",
            "opened_at": sn_time(opened_at), **extra}, at=opened_at)
        ticket = Ticket(platform="servicenow", id=row["sys_id"], number=row["number"],
                        title=title, kind=kind, state="open", opened_at=opened_at,
                        updated_at=opened_at, category=category, group=group, channel=channel)
        return ticket

    def _choice(self, table: str, value: str, label: str) -> None:
        """A ``category`` choice of ``table`` (sys_choice), once; every table also has the
        base system's "Inquiry / Help" (value ``inquiry``)."""
        have = {(r["name"], r["value"]) for r in self.tables["sys_choice"].values()}
        for name, choice, text in ((table, "inquiry", "Inquiry / Help"), (table, value, label)):
            if (name, choice) not in have:
                self.insert("sys_choice", {"name": name, "element": "category", "value": choice,
                                           "label": text, "inactive": "false",
                                           "language": "en"})
                have.add((name, choice))

    def add_group_id(self, name: str) -> str:
        self.add_group(name, [])
        return next(g["sys_id"] for g in self.tables["sys_user_group"].values()
                    if g["name"] == name)

    def answer_survey(self, ref: EffectRef, person: Person, scores: dict[str, int], text: str,
                      at: datetime) -> None:
        """``person`` completes the program's survey: an assessment instance and one metric
        result per question (a score per ADKAR dimension, the free text as a string answer),
        as Assessments and Surveys stores them."""
        survey = "adkar-pulse"
        (metric_type,) = [r["sys_id"] for r in self.tables["asmt_metric_type"].values()
                          if r["name"] == survey] or [
                              self.insert("asmt_metric_type", {"name": survey}, at)["sys_id"]]
        instance = self.insert("asmt_assessment_instance",
                               {"user": person.id, "metric_type": metric_type,
                                "state": "complete"}, at)["sys_id"]
        answers: list[tuple[str, dict[str, str]]] = [
            (name, {"actual_value": str(score)}) for name, score in scores.items()]
        if text:
            answers.append(("comments", {"string_value": text}))
        for name, value in answers:
            metric = self.insert("asmt_metric", {"name": name, "metric_type": metric_type},
                                 at)["sys_id"]
            self.insert("asmt_metric_result",
                        {"instance": instance, "metric": metric, **value}, at)

    def add_comment(self, ticket_id: str, author: Person, text: str, at: datetime,
                    internal: bool = False) -> None:
        record = self.find(ticket_id)
        user = self.tables["sys_user"][author.id]["user_name"]
        self.insert("sys_journal_field", {
            "element": "work_notes" if internal else "comments",
            "element_id": record["sys_id"], "name": record["sys_class_name"], "value": text,
            "_by": user}, at)

    def find(self, sys_id: str) -> dict[str, Any]:
        for table in (*TASK_TABLES, "announcement"):
            if sys_id in self.tables[table]:
                return self.tables[table][sys_id]
        raise KeyError(sys_id)

    def _set_state(self, ref: EffectRef, state: str, at: datetime) -> None:
        record = self.find(ref.remote_id.split("/")[1].split("#")[0])
        record.update(state=state, sys_updated_on=sn_time(at),
                      active="false" if state in ("3", "4", "7") else "true",
                      closed_at=sn_time(at) if state in ("3", "4", "7") else "")

    def complete_task(self, ref: EffectRef, at: datetime) -> None:
        self._set_state(ref, "3", at)

    def reopen_task(self, ref: EffectRef, at: datetime) -> None:
        self._set_state(ref, "1", at)

    def remember_key(self, key: str) -> None:
        """A key the plugin derived an identifier from (see the ``double`` fixture)."""
        self.keys.add(key)

    def decode(self, stored: str) -> str:
        """The full correlation key behind what the instance stores: the key itself, its
        ``chg-sha256:`` digest (long keys), or an announcement's UUIDv5 sys_id. A digest
        cannot be inverted, so it is matched against the keys the plugin hashed."""
        for key in self.keys:
            if stored in (key, real_stored_key(key), real_stored_key(key, 200),
                          announcement_sys_id(key)):
                return key
        return stored

    @staticmethod
    def _of_kind(key: str, kind: EffectKind) -> bool:
        segment = {EffectKind.TRAINING: ":training:", EffectKind.PROMPT: ":prompt:"}.get(kind)
        if segment is not None:
            return segment in key
        # Acknowledgement and feedback tasks look alike on the instance (and both keys have
        # ``:comm:``): each kind sees both.
        return ":training:" not in key and ":prompt:" not in key

    def records(self, kind: EffectKind) -> list[RemoteRecord]:
        out = []
        if kind in (EffectKind.TRAINING, EffectKind.FEEDBACK_REQUEST, EffectKind.MESSAGE):
            for row in self.tables["vtb_task"].values():
                key = self.decode(str(row.get("correlation_id") or ""))
                if row.get("correlation_display") == "itsm_change_sdk" and \
                        self._of_kind(key, kind):
                    out.append(RemoteRecord(
                        key=key, kind=kind, remote_id=f"vtb_task/{row['sys_id']}",
                        title=row["short_description"], body=row["description"],
                        open=row["active"] == "true", assignee=row["assigned_to"],
                        due=date.fromisoformat(row["due_date"][:10]) if row.get("due_date")
                        else None))
        if kind in (EffectKind.PROMPT, EffectKind.MESSAGE):
            for row in self.tables["sys_journal_field"].values():
                found = re.search(r"\[itsm-change:([^\]\s]+)\]", row["value"])
                key = self.decode(found.group(1)) if found else ""
                if found and row["element"] == "work_notes" and self._of_kind(key, kind):
                    out.append(RemoteRecord(
                        key=key, kind=kind,
                        remote_id=f"{row['name']}/{row['element_id']}#note", title="",
                        body=row["value"], open=True, ticket_id=row["element_id"]))
        if kind is EffectKind.MESSAGE:
            for row in self.tables["announcement"].values():
                out.append(RemoteRecord(
                    key=self.decode(row["sys_id"]), kind=kind,
                    remote_id=f"announcement/{row['sys_id']}", title=row["title"],
                    body=row["summary"], open=row["active"] == "true"))
        return out

    def fail_next_write(self, after_apply: bool) -> None:
        self.fail_writes.append(after_apply)

    def write_calls(self) -> int:
        return self.writes

    def request_count(self) -> int:
        """API requests received so far, reads and writes (the contract counts what a sync
        costs with it)."""
        return self.requests

    def set_page_size(self, size: int) -> None:
        self.max_page = size

    def settings(self) -> dict[str, str]:
        return {"instance_url": URL, "auth": "basic", "username": "svc_itsm",
                "password": PASSWORD, "webhook_secret": WEBHOOK_SECRET, "page_size": "100"}

    # -- queries --------------------------------------------------------------------------

    def columns(self, table: str) -> set[str]:
        own = COLUMNS.get(table, set())
        parent = COLUMNS["task"] if table in TASK_TABLES else set()
        custom = {str(r["element"]) for r in self.tables["sys_dictionary"].values()
                  if r["name"] in (table, "task" if table in TASK_TABLES else table)}
        return own | parent | SYSTEM | custom

    def value(self, table: str, record: dict[str, Any], path: str) -> str:
        head, _, rest = path.partition(".")
        raw = str(record.get(head, "") or "")
        if not rest:
            return raw
        target = REFERENCES.get(head)
        row = self.tables[target].get(raw) if target else None
        return self.value(target or "", row, rest) if row else ""

    def rows(self, table: str) -> list[dict[str, Any]]:
        if table == "task":
            return [r for t in TASK_TABLES for r in self.tables[t].values()]
        return list(self.tables[table].values())

    def matches(self, table: str, record: dict[str, Any], query: str) -> bool:
        if not query:
            return True
        return any(self._and(table, record, part) for part in query.split("^NQ"))

    def _and(self, table: str, record: dict[str, Any], query: str) -> bool:
        groups: list[list[str]] = []
        for term in query.split("^"):
            if not term or term.startswith("ORDERBY") or term == "EQ":
                continue
            if term.startswith("OR") and groups:
                groups[-1].append(term[2:])
            else:
                groups.append([term])
        return all(any(self._cond(table, record, c) for c in g) for g in groups)

    def _cond(self, table: str, record: dict[str, Any], cond: str) -> bool:
        found = COND.match(cond)
        if not found or found.group(1).split(".")[0] not in self.columns(table):
            return True  # ServiceNow ignores what it does not understand
        name, op, want = found.groups()
        if want == "javascript:gs.getUserID()":
            want = self.api_user.id  # the instance evaluates it: the signed-in user
        have = self.value(table, record, name).casefold()
        want = want.casefold()
        if op == "=":
            return have == want
        if op == "!=":
            return have != want
        if op == "IN":
            return have in want.split(",")
        if op == "LIKE":
            return want in have
        if op == "STARTSWITH":
            return have.startswith(want)
        return {">": have > want, "<": have < want, ">=": have >= want,
                "<=": have <= want}[op]

    def render(self, table: str, record: dict[str, Any], fields: list[str], display: str,
               exclude: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in fields or sorted(record):
            raw = self.value(table, record, name)
            if name in ("work_notes", "comments"):
                raw = ""
            target = REFERENCES.get(name)
            shown = raw
            if target and raw:
                ref = self.tables[target].get(raw, {})
                shown = ref.get("name") or ref.get("user_name") or raw
            if display == "true":
                out[name] = shown
            elif display == "all":
                out[name] = {"display_value": shown, "value": raw}
                if target and raw and not exclude:
                    out[name]["link"] = f"{URL}/api/now/table/{target}/{raw}"
            elif target and raw and not exclude:
                out[name] = {"link": f"{URL}/api/now/table/{target}/{raw}", "value": raw}
            else:
                out[name] = raw
        return out

    # -- HTTP -----------------------------------------------------------------------------

    @staticmethod
    def error(status: int, message: str, detail: str = "") -> tuple[int, dict, str]:
        return (status, {"Content-Type": "application/json"},
                json.dumps({"error": {"message": message, "detail": detail},
                            "status": "failure"}))

    def _authorised(self, headers: Any) -> bool:
        value = headers.get("Authorization", "")
        if value.startswith("Basic "):
            return base64.b64decode(value[6:]).decode() == f"svc_itsm:{PASSWORD}"
        if value.startswith("Bearer "):
            expiry = self.tokens.get(value[7:])
            return expiry is not None and expiry > self.clock
        return False

    def _guard(self, request: requests.PreparedRequest) -> tuple[int, dict, str] | None:
        self.requests += 1
        if self.throttle:
            wait = self.throttle.pop(0)
            status, headers, body = self.error(429, "Too Many Requests",
                                               "Rate limit exceeded")
            headers.update({"Retry-After": str(int(wait)), "X-RateLimit-Limit": "1000",
                            "X-RateLimit-Reset": "1740820000",
                            "X-RateLimit-Rule": "a1b2c3"})
            return status, headers, body
        if self.errors:
            status, payload = self.errors.pop(0)
            if isinstance(payload, str):
                return status, {"Content-Type": "text/html"}, payload
            return status, {"Content-Type": "application/json"}, json.dumps(payload)
        if not self._authorised(request.headers):
            return self.error(401, "User Not Authenticated",
                              "Required to provide Auth information")
        return None

    def _maybe_fail(self, apply: Callable[[], Any]) -> Any:
        if self.fail_writes:
            after = self.fail_writes.pop(0)
            if after:
                apply()
            raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=30)")
        return apply()

    def webhook_request(self, ticket: Ticket, *, forged: bool = False) -> WebhookRequest:
        """The update a business rule posts for the ticket's record, with the shared secret
        in ``X-ITSM-Change-Secret`` (a wrong one when ``forged``)."""
        body = {"kind": "record", "operation": "update", "table": "incident",
                "sys_id": ticket.id, "number": ticket.number,
                "sys_updated_on": sn_time(ticket.updated_at), "sys_mod_count": "2",
                "state": "2", "previous_state": "1", "correlation_id": "",
                "correlation_display": ""}
        headers = {"Content-Type": "application/json",
                   "X-ITSM-Change-Secret": "not-the-secret" if forged else WEBHOOK_SECRET}
        return WebhookRequest(platform="servicenow", headers=headers,
                              body=json.dumps(body).encode(), secret=WEBHOOK_SECRET)

    def refuse_next_request(self, status: int) -> str:
        """ServiceNow's error body: ``{"error": {"message", "detail"}, "status": "failure"}``."""
        message, detail = {
            401: ("User Not Authenticated", "Required to provide Auth information"),
            403: ("User Not Authorized", "ACL Exception Update Failed due to security "
                                         "constraints")}.get(status, ("Error", ""))
        self.refusals.append((status, json.dumps(
            {"error": {"message": message, "detail": detail}, "status": "failure"})))
        return message

    def _table_http(self, request: requests.PreparedRequest) -> tuple[int, dict, str]:
        blocked = self._guard(request)
        if blocked:
            return blocked
        if self.refusals:
            status, text = self.refusals.pop(0)
            return status, {"Content-Type": "application/json"}, text
        if request.method != "GET":
            self.writes += 1
            return self._maybe_fail(lambda: self.dispatch(request.method or "", request.url
                                                           or "", request.body))
        return self.dispatch("GET", request.url or "", None)

    def dispatch(self, method: str, url: str, body: Any) -> tuple[int, dict, str]:
        parts = urlsplit(url)
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        path = parts.path.split("/api/now/table/", 1)[1].split("/")
        table, sys_id = path[0], (path[1] if len(path) > 1 else None)
        fields = [f for f in params.get("sysparm_fields", "").split(",") if f]
        display = params.get("sysparm_display_value", "false")
        exclude = params.get("sysparm_exclude_reference_link") == "true"
        ok = {"Content-Type": "application/json"}
        if method == "GET" and sys_id is None:
            return self._list(table, params, fields, display, exclude)
        record = None
        if sys_id is not None:
            record = next((r for r in self.rows(table) if r["sys_id"] == sys_id), None)
            if record is None:
                return self.error(404, "No Record found",
                                  "Record doesn't exist or ACL restricts the record retrieval")
        if method == "GET":
            return 200, ok, json.dumps({"result": self.render(table, record or {}, fields,
                                                              display, exclude)})
        if method == "DELETE":
            del self.tables[record["sys_class_name"]][record["sys_id"]]  # type: ignore[index]
            return 204, {}, ""
        values = json.loads(body) if body else {}
        if method == "POST":
            if values.get("sys_id") and any(values["sys_id"] in self.tables[t]
                                            for t in list(self.tables)):
                return self.error(403, "Operation Failed", "Error during insert of "
                                  f"{table} (Unique Key violation detected)")
            record = self.insert(table, values)
            return 201, ok, json.dumps({"result": self.render(table, record, fields, display,
                                                              exclude)})
        assert record is not None
        real = record["sys_class_name"]
        for name, value in values.items():
            if name not in ("work_notes", "comments"):
                record[name] = value
        if values.get("state") in ("3", "4", "7"):
            record.update(active="false", closed_at=sn_time(self.clock))
        record["sys_updated_on"] = sn_time(self.tick())
        record["sys_mod_count"] = str(int(record["sys_mod_count"]) + 1)
        self._journal(real, record, values, None)
        return 200, ok, json.dumps({"result": self.render(real, record, fields, display,
                                                          exclude)})

    def _list(self, table: str, params: dict[str, str], fields: list[str], display: str,
              exclude: bool) -> tuple[int, dict, str]:
        query = params.get("sysparm_query", "")
        rows = [r for r in self.rows(table) if self.matches(table, r, query)]
        for term in reversed([t for t in query.split("^") if t.startswith("ORDERBY")]):
            desc = term.startswith("ORDERBYDESC")
            name = term[11:] if desc else term[7:]
            rows.sort(key=lambda r, n=name: str(r.get(n, "")), reverse=desc)
        limit = int(params.get("sysparm_limit", "10000"))
        if self.max_page:
            limit = min(limit, self.max_page)
        offset = int(params.get("sysparm_offset", "0"))
        if offset < 0:
            return self.error(400, f"offset is {offset}", "Negative offset is not supported")
        page = rows[offset:offset + limit]
        headers = {"Content-Type": "application/json", "X-Total-Count": str(len(rows))}
        if len(rows) > limit:
            def link(at: int, rel: str) -> str:
                query_string = urlencode({**params, "sysparm_offset": at, "sysparm_limit": limit})
                return f'<{URL}/api/now/table/{table}?{query_string}>;rel="{rel}"'
            links = [link(0, "first")]
            if offset + limit < len(rows):
                links.append(link(offset + limit, "next"))
            links.append(link(max(0, (len(rows) - 1) // limit * limit), "last"))
            headers["Link"] = ",".join(links)
        body = [self.render(table, r, fields, display, exclude) for r in page]
        return 200, headers, json.dumps({"result": body})

    def _batch_http(self, request: requests.PreparedRequest) -> tuple[int, dict, str]:
        blocked = self._guard(request)
        if blocked:
            return blocked
        self.writes += 1
        return self._maybe_fail(lambda: self._batch(json.loads(request.body or b"{}")))

    def _batch(self, payload: dict[str, Any]) -> tuple[int, dict, str]:
        serviced, unserviced = [], []
        for item in payload["rest_requests"]:
            if item["id"] in self.unservice_once:
                self.unservice_once.discard(item["id"])
                unserviced.append(item["id"])
                continue
            body = base64.b64decode(item["body"]).decode() if item.get("body") else None
            title = json.loads(body).get("short_description") if body else None
            if title in self.fail_item_once:
                status, message = self.fail_item_once.pop(title)
                code, _h, text = self.error(status, message, "Data policy rejected the insert")
            else:
                code, _h, text = self.dispatch(item["method"], URL + item["url"], body)
            serviced.append({"id": item["id"], "status_code": code, "status_text": "",
                             "body": base64.b64encode(text.encode()).decode(),
                             "execution_time": 3})
        result = {"batch_request_id": payload["batch_request_id"],
                  "serviced_requests": serviced, "unserviced_requests": unserviced}
        return 200, {"Content-Type": "application/json"}, json.dumps(result)

    def _token_http(self, request: requests.PreparedRequest) -> tuple[int, dict, str]:
        content_type = request.headers.get("Content-Type", "")
        raw = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        self.token_requests.append({"content_type": content_type, "body": raw})
        if "application/x-www-form-urlencoded" not in content_type:
            return 400, {"Content-Type": "application/json"}, json.dumps(
                {"error_description": "an unspecified error", "error": "server_error"})
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        denied = (401, {"Content-Type": "application/json"},
                  json.dumps({"error_description": "access_denied", "error": "server_error"}))
        if form.get("client_id") != "cid" or form.get("client_secret") != CLIENT_SECRET:
            return denied
        grant = form.get("grant_type")
        if grant == "password" and form.get("password") != PASSWORD:
            return denied
        if grant == "refresh_token" and form.get("refresh_token") not in self.refresh_tokens:
            return denied
        access = uuid.uuid4().hex
        self.tokens[access] = self.clock + timedelta(seconds=1799)
        answer = {"access_token": access, "scope": "useraccount", "token_type": "Bearer",
                  "expires_in": 1799}
        if grant == "password":
            refresh = uuid.uuid4().hex
            self.refresh_tokens.add(refresh)
            answer["refresh_token"] = refresh
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def double(rsps, monkeypatch):
    fake = ServiceNowFake(rsps)

    def stored_key(key: str, limit: int = mapping.KEY_LIMIT) -> str:
        fake.remember_key(key)
        return real_stored_key(key, limit)

    def derived_sys_id(key: str) -> str:
        fake.remember_key(key)
        return announcement_sys_id(key)

    # What the instance keeps of a key may be a one-way digest; the fake notes the keys the
    # plugin digests so that ``records`` can report the full key (the platform cannot).
    monkeypatch.setattr(mapping, "stored_key", stored_key)
    monkeypatch.setattr(client, "announcement_sys_id", derived_sys_id)
    return fake


@pytest.fixture
def no_sleep():
    return RetryPolicy(sleep=lambda _s: None, initial_wait=0, max_wait=0, min_wait=0)


@pytest.fixture
def platform(double, no_sleep):
    instance = ServiceNowPlatform.from_settings(double.settings())
    instance.transport.policy = no_sleep
    yield instance
    instance.close()
