"""A stateful fake of Jira Cloud REST v3 + JSM on ``responses`` callbacks.

It answers with the shapes Atlassian documents (ErrorCollection bodies, ``nextPageToken``
search pages, ``isLast`` group pages, bulk create with ``failedElementNumber``, 429 with
rate-limit headers) and evaluates the JQL the plugin sends with a real parser, so a value
that escaped its string literal would change what is found.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import requests
import responses
from itsm_change_jira import adf
from itsm_change_jira.mapping import strip_token

from itsm_change_sdk.model import EffectKind, EffectRef, Person, Ticket, WebhookRequest
from itsm_change_sdk.testing.double import Capabilities, RemoteRecord

SITE = "https://acme.atlassian.net"
Reply = tuple[int, dict[str, str], str]


def jira_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def error(status: int, *messages: str, **errors: str) -> Reply:
    body = {"errorMessages": list(messages), "errors": errors}
    return status, {"Content-Type": "application/json"}, json.dumps(body)


def ok(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body)


# -- JQL --------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>!=|>=|<=|!~|[=<>~(),])|'
                    r"(?P<word>[A-Za-z0-9_.\[\]\-]+))")


class JQLError(ValueError):
    pass


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise JQLError(f"Error in the JQL Query: unexpected {text[pos:pos + 10]!r}")
        pos = match.end()
        if match.group("str") is not None:
            raw = match.group("str")[1:-1]
            tokens.append(("str", re.sub(r"\\(.)", r"\1", raw)))
        elif match.group("op") is not None:
            tokens.append(("op", match.group("op")))
        else:
            tokens.append(("word", match.group("word")))
    return tokens


@dataclass
class Clause:
    field: str
    op: str
    value: Any


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise JQLError("Error in the JQL Query: unexpected end")
        self.i += 1
        return token

    def is_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].upper() in words

    def parse(self) -> tuple[Any, list[str]]:
        expr = self.expr()
        order: list[str] = []
        if self.is_word("ORDER"):
            self.take()
            if not self.is_word("BY"):
                raise JQLError("expected BY")
            self.take()
            while self.peek():
                kind, value = self.take()
                if kind == "word" and value.upper() not in {"ASC", "DESC"}:
                    order.append(value)
                elif kind == "word" and value.upper() == "DESC" and order:
                    order[-1] = "-" + order[-1]
        if self.peek():
            raise JQLError(f"Error in the JQL Query: unexpected {self.peek()}")
        return expr, order

    def expr(self) -> Any:
        node = self.term()
        while self.is_word("OR"):
            self.take()
            node = ("or", node, self.term())
        return node

    def term(self) -> Any:
        node = self.factor()
        while self.is_word("AND"):
            self.take()
            node = ("and", node, self.factor())
        return node

    def factor(self) -> Any:
        if self.peek() == ("op", "("):
            self.take()
            node = self.expr()
            if self.take() != ("op", ")"):
                raise JQLError("expected )")
            return node
        kind, name = self.take()
        if kind != "word":
            raise JQLError(f"expected a field, got {name!r}")
        if self.is_word("NOT"):
            self.take()
            if not self.is_word("IN"):
                raise JQLError("expected IN")
            self.take()
            return Clause(name, "not in", self.values())
        if self.is_word("IN"):
            self.take()
            return Clause(name, "in", self.values())
        kind, op = self.take()
        if kind != "op":
            raise JQLError(f"expected an operator after {name}")
        value_kind, value = self.take()
        if value_kind == "op":
            raise JQLError("expected a value")
        return Clause(name, op, value)

    def values(self) -> list[str]:
        if self.take() != ("op", "("):
            raise JQLError("expected (")
        out = []
        while True:
            kind, value = self.take()
            if kind == "op" and value == ")":
                return out
            if kind == "op" and value == ",":
                continue
            out.append(value)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


# -- the fake ---------------------------------------------------------------------------------


@dataclass
class FakeJira:
    rsps: responses.RequestsMock
    validator: Any = None
    name: str = "jira"
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(
        channels=frozenset({"task", "ticket_note"}), survey_answers=False, http=True,
        filter_checks=True))
    timezone: str = "UTC"
    page_size: int = 100
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    feedback: dict[str, dict[str, Any]] = field(default_factory=dict)
    refusals: list[tuple[int, str]] = field(default_factory=list)
    granted: set[str] = field(default_factory=lambda: {
        "BROWSE_PROJECTS", "CREATE_ISSUES", "ASSIGN_ISSUES", "ASSIGNABLE_USER", "EDIT_ISSUES",
        "TRANSITION_ISSUES", "ADD_COMMENTS", "EDIT_OWN_COMMENTS"})
    requests_log: list[tuple[str, str, Any]] = field(default_factory=list)
    writes: int = 0
    valid_credentials: bool = True
    searches: list[str] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)
    _fail_next: bool | None = None
    _throttle: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(10000))
    _now: datetime = field(default_factory=lambda: datetime(2025, 6, 2, 9, 0, tzinfo=UTC))
    _newest: datetime = field(default_factory=lambda: datetime(2025, 6, 2, 9, 0, tzinfo=UTC))
    _mutex: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.projects["OPS"] = {"id": "10001", "key": "OPS", "projectTypeKey": "software",
                                "counter": 0}
        self.projects["HELP"] = {"id": "10002", "key": "HELP",
                                 "projectTypeKey": "service_desk", "counter": 0}
        self.projects["SECRET"] = {"id": "10003", "key": "SECRET",
                                   "projectTypeKey": "software", "counter": 0}
        self.me = self.add_person("Change Bot", "bot@example.com")
        for method in ("GET", "POST", "PUT", "DELETE"):
            self.rsps.add_callback(method, re.compile(re.escape(SITE) + r"/.*"),
                                   callback=self.dispatch)
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = [
            (m, re.compile(f"^{p}$"), h) for m, p, h in (
                ("GET", r"/rest/api/3/serverInfo", self.server_info),
                ("GET", r"/rest/api/3/myself", self.myself),
                ("GET", r"/rest/api/3/mypermissions", self.my_permissions),
                ("POST", r"/rest/api/3/search/jql", self.search),
                ("GET", r"/rest/api/3/search", self.legacy_search),
                ("POST", r"/rest/api/3/search", self.legacy_search),
                ("GET", r"/rest/api/3/project/([^/]+)", self.get_project),
                ("POST", r"/rest/api/3/issue/bulk", self.bulk_create),
                ("POST", r"/rest/api/3/issue/bulkfetch", self.bulk_fetch),
                ("GET", r"/rest/api/3/issue/([^/]+)", self.get_issue),
                ("PUT", r"/rest/api/3/issue/([^/]+)", self.edit_issue),
                ("GET", r"/rest/api/3/issue/([^/]+)/transitions", self.get_transitions),
                ("POST", r"/rest/api/3/issue/([^/]+)/transitions", self.do_transition),
                ("GET", r"/rest/api/3/issue/([^/]+)/comment", self.get_comments),
                ("POST", r"/rest/api/3/issue/([^/]+)/comment", self.add_comment_api),
                ("PUT", r"/rest/api/3/issue/([^/]+)/comment/(\d+)", self.update_comment),
                ("PUT", r"/rest/api/3/comment/(\d+)/properties/([^/]+)", self.set_comment_prop),
                ("POST", r"/rest/servicedeskapi/request/([^/]+)/comment", self.sd_comment),
                ("GET", r"/rest/servicedeskapi/request/([^/]+)/feedback", self.sd_feedback),
                ("GET", r"/rest/api/3/groups/picker", self.groups_picker),
                ("GET", r"/rest/api/3/group/member", self.group_member),
                ("GET", r"/rest/api/3/user/bulk", self.user_bulk),
                ("GET", r"/rest/webhooks/1\.0/webhook", self.list_webhooks),
                ("POST", r"/rest/webhooks/1\.0/webhook", self.create_webhook),
                ("DELETE", r"/rest/webhooks/1\.0/webhook/(\d+)", self.delete_webhook),
            )
        ]

    # -- plumbing -----------------------------------------------------------------------------

    def dispatch(self, request: requests.PreparedRequest) -> Reply:
        # One request at a time, as the plugin writes comments side by side.
        with self._mutex:
            return self._dispatch(request)

    def _dispatch(self, request: requests.PreparedRequest) -> Reply:
        parts = urlsplit(request.url or "")
        query = parse_qs(parts.query, keep_blank_values=True)
        body = json.loads(request.body) if request.body else None
        method = request.method or "GET"
        self.requests_log.append((method, parts.path, body))
        if self.validator is not None:
            self.validator.check(method, parts.path, query, body)
        if self.refusals:
            status, message = self.refusals.pop(0)
            return error(status, message)
        if not self.valid_credentials and parts.path != "/rest/api/3/serverInfo":
            return error(401, "Client must be authenticated to access this resource.")
        if self._throttle:
            reason = self._throttle.pop(0)
            reset = (self._now + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%MZ")
            return (
                429, {"Content-Type": "application/json", "Retry-After": "2",
                      "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                      "X-RateLimit-Reset": reset, "RateLimit-Reason": reason},
                json.dumps({"errorMessages": ["Rate limit exceeded."], "errors": {}}))
        for route_method, pattern, handler in self.routes:
            match = pattern.match(parts.path)
            if match and route_method == method:
                is_read = parts.path.endswith(("/search/jql", "/bulkfetch"))
                if method != "GET" and not is_read:
                    self.writes += 1
                creates = method == "POST" and not is_read and "transitions" not in parts.path
                if creates and self._fail_next is not None:
                    after_apply, self._fail_next = self._fail_next, None
                    if after_apply:
                        handler(*match.groups(), query=query, body=body)
                    raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=30)")
                return handler(*match.groups(), query=query, body=body)
        return error(404, f"No route for {method} {parts.path}")

    def throttle_next(self, reason: str = "jira-burst-based", times: int = 1) -> None:
        self._throttle.extend([reason] * times)

    def tick(self, minutes: int = 1) -> datetime:
        self._now += timedelta(minutes=minutes)
        return self._now

    def _user(self, account_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.users[account_id].items() if k != "groups"}

    def _issue(self, id_or_key: str) -> dict[str, Any] | None:
        if id_or_key in self.issues:
            return self.issues[id_or_key]
        return next((i for i in self.issues.values() if i["key"] == id_or_key.upper()), None)

    # -- PlatformDouble -----------------------------------------------------------------------

    def add_person(self, name: str, email: str) -> Person:
        account_id = f"712020:{len(self.users) + 1:08d}-aaaa-bbbb-cccc-{len(self.users):012d}"
        self.users[account_id] = {
            "accountId": account_id, "accountType": "atlassian", "displayName": name,
            "emailAddress": email, "active": True, "timeZone": self.timezone,
            "self": f"{SITE}/rest/api/3/user?accountId={account_id}",
        }
        return Person(id=account_id, name=name, platform="jira", email=email)

    def add_group(self, name: str, members: list[Person]) -> str:
        group_id = f"{len(self.groups) + 1:08d}-0000-4000-8000-000000000000"
        self.groups[group_id] = {"name": name, "groupId": group_id,
                                 "members": [m.id for m in members]}
        return name

    def add_ticket(self, *, title: str, opened_at: datetime, kind: str = "incident",
                   category: str | None = None, group: str | None = None,
                   channel: str | None = "portal", requester: Person | None = None,
                   project: str = "HELP") -> Ticket:
        fields: dict[str, Any] = {
            "summary": title, "issuetype": {"name": kind.capitalize()},
            "labels": [], "components": [{"name": category}] if category else [],
            "priority": {"name": "Medium"},
            "reporter": self._user(requester.id) if requester else None,
        }
        if channel:
            fields["customfield_10060"] = {"value": channel}
        if group:
            fields["customfield_10070"] = {"value": group}
        issue = self._new_issue(project, fields, opened_at)
        from itsm_change_jira.mapping import ticket_from_issue
        return ticket_from_issue(issue, SITE, "customfield_10060", "customfield_10070")

    def add_comment(self, ticket_id: str, author: Person, text: str, at: datetime,
                    internal: bool = False) -> None:
        issue = self._issue(ticket_id)
        assert issue is not None
        self._store_comment(issue, adf.from_plain_text(text), author.id, at,
                            jsd_public=not internal)

    def _status(self, done: bool) -> dict[str, Any]:
        if done:
            return {"name": "Done", "statusCategory": {"key": "done", "name": "Done"}}
        return {"name": "To Do", "statusCategory": {"key": "new", "name": "To Do"}}

    def complete_task(self, ref: EffectRef, at: datetime) -> None:
        issue = self.issues[ref.remote_id]
        issue["fields"].update(status=self._status(True), resolutiondate=jira_time(at),
                               resolution={"name": "Done"}, updated=jira_time(at))

    def reopen_task(self, ref: EffectRef, at: datetime) -> None:
        issue = self.issues[ref.remote_id]
        issue["fields"].update(status=self._status(False), resolutiondate=None,
                               resolution=None, updated=jira_time(at))

    def webhook_request(self, ticket: Ticket, *, forged: bool = False) -> WebhookRequest:
        """``jira:issue_updated`` for the ticket's issue as the site sends it, signed with
        HMAC-SHA256 of the body in ``X-Hub-Signature`` (with a wrong key when ``forged``)."""
        from itsm_change_jira.webhook import sign

        issue = self.issues[ticket.id]
        body = json.dumps({"timestamp": 1717232400000, "webhookEvent": "jira:issue_updated",
                           "issue_event_type_name": "issue_generic",
                           "issue": {"id": issue["id"], "key": issue["key"],
                                     "fields": issue["fields"]},
                           "changelog": {"id": "10501", "items": []}}).encode()
        secret = self.settings()["webhook_secret"]
        signature = sign(body, "not-the-secret" if forged else secret)
        return WebhookRequest(platform="jira", headers={"X-Hub-Signature": signature,
                              "X-Atlassian-Webhook-Identifier": f"wh-{issue['id']}"},
                              body=body, secret=secret)

    def refuse_next_request(self, status: int) -> str:
        """Atlassian's error collection: ``{"errorMessages": [...], "errors": {}}``."""
        message = {401: "Client must be authenticated to access this resource.",
                   403: "You do not have permission to view this issue."}.get(
            status, "The request could not be processed.")
        self.refusals.append((status, message))
        return message

    def answer_survey(self, ref: EffectRef, person: Person, scores: Mapping[str, int],
                      text: str, at: datetime) -> None:
        """The reporter rates the resolved request (JSM CSAT: one 1-5 rating and a comment)."""
        self.complete_task(ref, at)
        rating = max(1, min(5, round(sum(scores.values()) / len(scores))))
        self.feedback[ref.remote_id] = {"type": "csat", "rating": rating,
                                        "comment": {"body": text}}

    def records(self, kind: EffectKind) -> list[RemoteRecord]:
        out = []
        for issue in self.issues.values():
            prop = issue["properties"].get("itsm-change") or {}
            fields = issue["fields"]
            if prop.get("kind") == str(kind):
                due = fields.get("duedate")
                out.append(RemoteRecord(
                    key=prop["key"], kind=kind, remote_id=issue["id"],
                    title=fields["summary"], body=adf.to_plain_text(fields.get("description")),
                    open=fields["status"]["statusCategory"]["key"] != "done",
                    assignee=(fields.get("assignee") or {}).get("accountId"),
                    due=date.fromisoformat(due) if due else None))
            for comment in issue["comments"]:
                cprop = comment["properties"].get("itsm-change") or {}
                if cprop.get("kind") == str(kind):
                    visibility = comment.get("visibility") or {}
                    groups = ((visibility["value"],) if visibility.get("type") == "group"
                              else ())
                    out.append(RemoteRecord(
                        key=cprop["key"], kind=kind,
                        remote_id=f"{issue['id']}/comment/{comment['id']}", title="",
                        body=strip_token(adf.to_plain_text(comment["body"])),
                        open=not cprop.get("retired"), ticket_id=issue["id"],
                        audience_groups=groups))
        return out

    def fail_next_write(self, after_apply: bool) -> None:
        self._fail_next = after_apply

    def write_calls(self) -> int:
        return self.writes

    def request_count(self) -> int:
        """API requests received so far, reads and writes (the contract counts what a sync
        costs with it)."""
        return len(self.requests_log)

    def set_page_size(self, size: int) -> None:
        self.page_size = size

    def settings(self) -> Mapping[str, str]:
        return {"site_url": SITE, "auth": "basic", "email": "bot@example.com",
                "api_token": "ATATT3xFfGF0-secret-token-value", "project": "OPS",
                "ticket_projects": "HELP", "channel_field": "customfield_10060",
                "group_field": "customfield_10070", "webhook_secret": "whsec-0123456789"}

    # -- storage ------------------------------------------------------------------------------

    def _new_issue(self, project_key: str, fields: dict[str, Any], at: datetime | None = None,
                   properties: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        project = self.projects[project_key]
        project["counter"] += 1
        issue_id = str(next(self._ids))
        self._newest = max(self._newest, at or self._now)
        when = jira_time(at or self._now)
        stored = {
            "id": issue_id, "key": f"{project_key}-{project['counter']}",
            "self": f"{SITE}/rest/api/3/issue/{issue_id}",
            "fields": {"status": self._status(False), "created": when, "updated": when,
                       "resolutiondate": None, "labels": [], "components": [],
                       "duedate": None, "assignee": None, "reporter": None,
                       "priority": {"name": "Medium"}, "description": None,
                       **fields,
                       "project": {k: v for k, v in project.items() if k != "counter"}},
            "properties": {p["key"]: p["value"] for p in properties or []},
            "comments": [],
        }
        self.issues[issue_id] = stored
        return stored

    def _api_now(self) -> datetime:
        """The site's clock for a comment written through the API: never behind anything
        already stored (tests add tickets at any time they like), so a comment moves its
        issue to the end of an ``ORDER BY updated`` search, as on a real site."""
        self._now = max(self._now, self._newest + timedelta(seconds=1))
        return self._now

    def _store_comment(self, issue: dict[str, Any], body: Any, author: str, at: datetime,
                       jsd_public: bool = True, visibility: Any = None,
                       properties: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        comment = {"id": str(next(self._ids)), "body": body, "author": self._user(author),
                   "created": jira_time(at), "updated": jira_time(at), "jsdPublic": jsd_public,
                   "properties": {p["key"]: p["value"] for p in properties or []}}
        if visibility:
            comment["visibility"] = visibility
        issue["comments"].append(comment)
        issue["fields"]["updated"] = jira_time(max(at, self._parse(issue["fields"]["updated"])))
        self._newest = max(self._newest, at)
        return comment

    @staticmethod
    @functools.lru_cache(maxsize=65536)
    def _parse(value: str) -> datetime:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.000+0000").replace(tzinfo=UTC)

    # -- JQL evaluation -----------------------------------------------------------------------

    def _value(self, issue: dict[str, Any], name: str) -> Any:
        fields = issue["fields"]
        lowered = name.lower()
        if lowered == "project":
            return [fields["project"]["key"].lower()]
        if lowered == "labels":
            return [label.lower() for label in fields["labels"]]
        if lowered in {"issuetype", "type"}:
            return [fields["issuetype"]["name"].lower()]
        if lowered == "priority":
            return [(fields.get("priority") or {}).get("name", "").lower()]
        if lowered == "statuscategory":
            return [fields["status"]["statusCategory"]["name"].lower()]
        if lowered in {"id", "key", "issue", "issuekey"}:
            return [issue["id"], issue["key"].lower()]
        raise JQLError(f"Field '{name}' does not exist or you do not have permission to view it.")

    def _matches(self, issue: dict[str, Any], node: Any) -> bool:
        if isinstance(node, tuple):
            op, left, right = node
            if op == "and":
                return self._matches(issue, left) and self._matches(issue, right)
            return self._matches(issue, left) or self._matches(issue, right)
        clause: Clause = node
        if clause.field.lower() in {"updated", "created"}:
            literal = _literal(clause.value, self.timezone)
            actual = self._parse(issue["fields"][clause.field.lower()])
            actual = actual.replace(second=0, microsecond=0)
            return {">=": actual >= literal, ">": actual > literal, "<": actual < literal,
                    "<=": actual <= literal}[clause.op]
        if clause.op == "~":
            wanted = _words(clause.value)
            if clause.field.lower() == "comment":
                texts = [adf.to_plain_text(c["body"]) for c in issue["comments"]]
            elif clause.field.lower().startswith("cf["):
                number = clause.field[3:-1]
                texts = [str(issue["fields"].get(f"customfield_{number}") or "")]
            else:
                texts = [str(issue["fields"].get(clause.field) or "")]
            return any(" ".join(wanted) in " ".join(_words(t)) for t in texts) and bool(wanted)
        actual = self._value(issue, clause.field)
        values = clause.value if isinstance(clause.value, list) else [clause.value]
        hit = any(str(v).lower() in actual for v in values)
        return not hit if clause.op in {"!=", "not in"} else hit

    # -- handlers -----------------------------------------------------------------------------

    def server_info(self, query: Any, body: Any) -> Reply:
        return ok({"baseUrl": SITE, "version": "1001.0.0-SNAPSHOT", "buildNumber": 100283,
                   "deploymentType": "Cloud", "serverTitle": "Jira"})

    def myself(self, query: Any, body: Any) -> Reply:
        return ok({**self._user(self.me.id), "timeZone": self.timezone})

    def my_permissions(self, query: Any, body: Any) -> Reply:
        if query.get("projectKey", [""])[0] not in self.projects:
            return error(404, "No project could be found with key 'X'.")
        wanted = query.get("permissions", [""])[0].split(",")
        return ok({"permissions": {p: {"id": str(i), "key": p, "name": p, "type": "PROJECT",
                                       "havePermission": p in self.granted}
                                   for i, p in enumerate(wanted)}})

    def get_project(self, key: str, query: Any, body: Any) -> Reply:
        """The project with its issue types (a service desk's, or a software project's,
        plus any its issues use) and the components its issues carry."""
        project = self.projects.get(key) or next(
            (p for p in self.projects.values() if p["id"] == key), None)
        if project is None:
            return error(404, f"No project could be found with key '{key}'.")
        issues = [i for i in self.issues.values() if i["fields"]["project"]["id"] == project["id"]]
        types = (["Incident", "Service Request", "Task"]
                 if project["projectTypeKey"] == "service_desk" else ["Task", "Bug", "Story"])
        types += [i["fields"]["issuetype"]["name"] for i in issues]
        components = {c["name"] for i in issues for c in i["fields"].get("components") or []}
        return ok({"id": project["id"], "key": project["key"],
                   "projectTypeKey": project["projectTypeKey"],
                   "issueTypes": [{"id": str(n), "name": t}
                                  for n, t in enumerate(dict.fromkeys(types), 10001)],
                   "components": [{"id": str(n), "name": c}
                                  for n, c in enumerate(sorted(components), 10101)]})

    def legacy_search(self, query: Any, body: Any) -> Reply:
        return error(410, "The requested API has been removed. Please migrate to the "
                     "/rest/api/3/search/jql API. A full migration guideline is available at "
                     "https://developer.atlassian.com/changelog/#CHANGE-2046")

    def search(self, query: Any, body: Any) -> Reply:
        self.searches.append(body["jql"])
        try:
            expr, order = Parser(body["jql"]).parse()
            if not any(isinstance(c, Clause) and c.field.lower() in {"project", "updated"}
                       for c in _clauses(expr)):
                return error(400, "Unbounded JQL queries are not allowed here. Please add a "
                             "search restriction to your query.")
            found = [i for i in self.issues.values() if self._matches(i, expr)]
            self.hits.extend(i["key"] for i in found)
        except JQLError as exc:
            return error(400, str(exc))
        for name in reversed(order):
            desc = name.startswith("-")
            key = name.lstrip("-").lower()
            found.sort(key=lambda i, k=key: int(i["id"]) if k == "id"
                       else i["fields"][k], reverse=desc)
        start = int(base64.b64decode(body["nextPageToken"])) if body.get("nextPageToken") else 0
        size = min(int(body.get("maxResults", 50)), self.page_size)
        page = found[start:start + size]
        wanted = body.get("fields") or ["id"]
        issues = [self._shape(i, wanted) for i in page]
        result: dict[str, Any] = {"issues": issues, "isLast": start + size >= len(found)}
        if not result["isLast"]:
            result["nextPageToken"] = base64.b64encode(str(start + size).encode()).decode()
        return ok(result)

    def _shape(self, issue: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
        fields = {k: v for k, v in issue["fields"].items() if k in wanted or "*all" in wanted}
        return {"id": issue["id"], "key": issue["key"], "self": issue["self"], "fields": fields}

    def _validate_create(self, update: dict[str, Any]) -> tuple[dict[str, Any] | None,
                                                                 dict[str, str]]:
        fields = dict(update.get("fields") or {})
        project = (fields.get("project") or {}).get("key")
        errors: dict[str, str] = {}
        if project not in self.projects:
            errors["project"] = "valid project is required"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        assignee = (fields.get("assignee") or {}).get("id")
        if assignee and assignee not in self.users:
            errors["assignee"] = f"User '{assignee}' does not exist."
        for label in fields.get("labels") or []:
            if " " in label or len(label) > 255:
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        if errors:
            return None, errors
        if assignee:
            fields["assignee"] = self._user(assignee)
        reporter = (fields.get("reporter") or {}).get("id")
        fields["reporter"] = self._user(reporter or self.me.id)
        fields.pop("project")
        issue = self._new_issue(project, fields, properties=update.get("properties"))
        return issue, {}

    def bulk_create(self, query: Any, body: Any) -> Reply:
        updates = body.get("issueUpdates") or []
        if len(updates) > 50:
            return error(400, "The number of issues to create exceeds the maximum of 50.")
        created, failed = [], []
        for index, update in enumerate(updates):
            issue, errors = self._validate_create(update)
            if issue is None:
                failed.append({"status": 400, "failedElementNumber": index,
                               "elementErrors": {"errorMessages": [], "errors": errors}})
            else:
                created.append({"id": issue["id"], "key": issue["key"], "self": issue["self"]})
        return ok({"issues": created, "errors": failed}, 201 if created else 400)

    def bulk_fetch(self, query: Any, body: Any) -> Reply:
        issues, missing = [], []
        for ref in body["issueIdsOrKeys"]:
            issue = self._issue(ref)
            if issue is None:
                missing.append(ref)
            else:
                issues.append(self._shape(issue, body.get("fields") or ["*all"]))
        return ok({"issues": issues, "issueErrors": [
            {"id": m, "errorMessages": ["Issue does not exist"]} for m in missing]})

    def get_issue(self, key: str, query: Any, body: Any) -> Reply:
        issue = self._issue(key)
        if issue is None:
            return error(404, "Issue does not exist or you do not have permission to see it.")
        wanted = (query.get("fields") or ["*all"])[0].split(",")
        return ok(self._shape(issue, wanted))

    def edit_issue(self, key: str, query: Any, body: Any) -> Reply:
        issue = self._issue(key)
        if issue is None:
            return error(404, "Issue does not exist or you do not have permission to see it.")
        fields = dict(body.get("fields") or {})
        if fields.get("assignee"):
            fields["assignee"] = self._user(fields["assignee"]["id"])
        issue["fields"].update(fields)
        for op in (body.get("update") or {}).get("labels", []):
            if "add" in op and op["add"] not in issue["fields"]["labels"]:
                issue["fields"]["labels"].append(op["add"])
        issue["fields"]["updated"] = jira_time(self._now)
        return 204, {}, ""

    def get_transitions(self, key: str, query: Any, body: Any) -> Reply:
        if self._issue(key) is None:
            return error(404, "Issue does not exist or you do not have permission to see it.")
        return ok({"expand": "transitions", "transitions": [
            {"id": "11", "name": "To Do", "to": self._status(False), "isAvailable": True},
            {"id": "31", "name": "Done", "to": self._status(True), "isAvailable": True}]})

    def do_transition(self, key: str, query: Any, body: Any) -> Reply:
        issue = self._issue(key)
        if issue is None:
            return error(404, "Issue does not exist or you do not have permission to see it.")
        done = body["transition"]["id"] == "31"
        issue["fields"].update(status=self._status(done),
                               resolutiondate=jira_time(self._now) if done else None)
        return 204, {}, ""

    def get_comments(self, key: str, query: Any, body: Any) -> Reply:
        issue = self._issue(key)
        if issue is None:
            return error(404, "Issue does not exist or you do not have permission to see it.")
        start = int(query.get("startAt", ["0"])[0])
        size = min(int(query.get("maxResults", ["50"])[0]), self.page_size)
        expand = "properties" in query.get("expand", [""])[0]
        page = []
        for comment in issue["comments"][start:start + size]:
            shaped = {k: v for k, v in comment.items() if k != "properties"}
            if expand:
                shaped["properties"] = [{"key": k, "value": v}
                                        for k, v in comment["properties"].items()]
            page.append(shaped)
        return ok({"startAt": start, "maxResults": size, "total": len(issue["comments"]),
                   "comments": page})

    def add_comment_api(self, key: str, query: Any, body: Any) -> Reply:
        issue = self._issue(key)
        if issue is None:
            return error(404, "Issue does not exist or you do not have permission to see it.")
        if not isinstance(body.get("body"), dict) or body["body"].get("type") != "doc":
            return error(400, "Comment body is not valid!")
        # On a JSM request a platform comment is public unless its sd.public.comment
        # property says internal (a JSON boolean), as on a site.
        props = {p["key"]: p["value"] for p in body.get("properties") or []}
        internal = (props.get("sd.public.comment") or {}).get("internal") is True
        comment = self._store_comment(issue, body["body"], self.me.id, self._api_now(),
                                      jsd_public=not internal,
                                      visibility=body.get("visibility"),
                                      properties=body.get("properties"))
        return ok({k: v for k, v in comment.items() if k != "properties"}, 201)

    def update_comment(self, key: str, comment_id: str, query: Any, body: Any) -> Reply:
        issue = self._issue(key)
        comment = next((c for c in (issue or {}).get("comments", [])
                        if c["id"] == comment_id), None)
        if comment is None:
            return error(404, "Can not find a comment for the id.")
        comment["body"] = body["body"]
        if "visibility" in body:
            comment["visibility"] = body["visibility"]
        return ok({k: v for k, v in comment.items() if k != "properties"})

    def set_comment_prop(self, comment_id: str, key: str, query: Any, body: Any) -> Reply:
        for issue in self.issues.values():
            for comment in issue["comments"]:
                if comment["id"] == comment_id:
                    existed = key in comment["properties"]
                    comment["properties"][key] = body
                    return 200 if existed else 201, {}, ""
        return error(404, "The comment does not exist.")

    def sd_comment(self, key: str, query: Any, body: Any) -> Reply:
        issue = self._issue(key)
        if issue is None or issue["fields"]["project"]["projectTypeKey"] != "service_desk":
            return error(404, "Request does not exist or you do not have permission to see it.")
        if not isinstance(body.get("body"), str) or "public" not in body:
            return error(400, "The comment body and 'public' are required.")
        comment = self._store_comment(issue, body["body"], self.me.id, self._api_now(),
                                      jsd_public=bool(body["public"]))
        return ok({"id": comment["id"], "body": body["body"], "public": body["public"],
                   "author": self._user(self.me.id),
                   "created": {"iso8601": comment["created"], "jira": comment["created"],
                               "friendly": "Today", "epochMillis": 0}}, 201)

    def sd_feedback(self, key: str, query: Any, body: Any) -> Reply:
        issue = self._issue(key)
        if issue is None or issue["id"] not in self.feedback:
            return error(404, "Feedback does not exist for this request.")
        return ok(self.feedback[issue["id"]])

    def groups_picker(self, query: Any, body: Any) -> Reply:
        text = query.get("query", [""])[0].lower()
        found = [g for g in self.groups.values() if text in g["name"].lower()]
        return ok({"header": f"Showing {len(found)} of {len(found)} matching groups",
                   "total": len(found),
                   "groups": [{"name": g["name"], "html": g["name"], "groupId": g["groupId"],
                               "labels": []} for g in found]})

    def group_member(self, query: Any, body: Any) -> Reply:
        group = self.groups.get(query.get("groupId", [""])[0])
        if group is None:
            return error(404, "Specified group does not exist.")
        start = int(query.get("startAt", ["0"])[0])
        size = min(int(query.get("maxResults", ["50"])[0]), self.page_size)
        members = [self._user(m) for m in group["members"]]
        page = members[start:start + size]
        last = start + size >= len(members)
        result: dict[str, Any] = {"self": f"{SITE}/rest/api/3/group/member", "startAt": start,
                                  "maxResults": size, "total": len(members), "isLast": last,
                                  "values": page}
        if not last:
            result["nextPage"] = (f"{SITE}/rest/api/3/group/member?groupId={group['groupId']}"
                                  f"&startAt={start + size}&maxResults={size}")
        return ok(result)

    def user_bulk(self, query: Any, body: Any) -> Reply:
        values = [self._user(a) for a in query.get("accountId", []) if a in self.users]
        return ok({"startAt": 0, "maxResults": 50, "total": len(values), "isLast": True,
                   "values": values})

    def list_webhooks(self, query: Any, body: Any) -> Reply:
        return ok(list(self.webhooks.values()))

    def create_webhook(self, query: Any, body: Any) -> Reply:
        hook_id = str(len(self.webhooks) + 1)
        stored = {**body, "self": f"{SITE}/rest/webhooks/1.0/webhook/{hook_id}",
                  "enabled": True, "lastUpdatedUser": self.me.id}
        self.webhooks[hook_id] = stored
        return ok({k: v for k, v in stored.items() if k != "secret"}, 201)

    def delete_webhook(self, hook_id: str, query: Any, body: Any) -> Reply:
        if self.webhooks.pop(hook_id, None) is None:
            return error(404, "Webhook not found")
        return 204, {}, ""


@functools.lru_cache(maxsize=1024)
def _literal(value: str, timezone: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(timezone))


def _clauses(node: Any) -> list[Clause]:
    if isinstance(node, tuple):
        return [*_clauses(node[1]), *_clauses(node[2])]
    return [node]
