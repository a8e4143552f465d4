"""A stateful fake of Freshservice API v2 on ``responses`` callbacks, and the fixtures.

It answers as Freshservice documents: ``{"ticket": {...}}`` / ``{"tickets": [...]}`` wrappers,
``Link`` pagination on lists, ``total`` on the filter endpoint, the ``Validation failed`` error
body, rate-limit headers on every answer, and the 30-day default window of the ticket list.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
import responses
from itsm_change_freshservice.client import FreshservicePlatform
from itsm_change_freshservice.mapping import (
    CHANNEL_SOURCES,
    MANAGED_TAG,
    STATUS_CLOSED,
    STATUS_RESOLVED,
    TASK_COMPLETED,
    TASK_OPEN,
    kind_tag,
    ticket_from_payload,
)

from itsm_change_sdk.model import EffectKind, EffectRef, Person, Ticket, WebhookRequest
from itsm_change_sdk.testing.double import Capabilities, RemoteRecord

BASE = "https://acme.freshservice.com"
API_KEY = "fs-test-key-9f8e7d6c5b4a"
WEBHOOK_SECRET = "whsec-freshservice-0a1b2c3d"
_MARKER = re.compile(r"itsm-change-key:(\S+?)(?:<|$|\s)")
_KIND_LINE = re.compile(r"itsm-change-kind:([a-z_]+)")
Response = tuple[int, dict[str, str], str]


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _text(body: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", body.replace("<br>", "\n"))).strip()


def validation_error(field: str, message: str, code: str = "invalid_value") -> dict[str, Any]:
    return {"description": "Validation failed",
            "errors": [{"field": field, "message": message, "code": code}]}


class QueryError(ValueError):
    pass


class FilterQuery:
    """Just enough of Freshservice's filter-query language to evaluate what the plugin sends."""

    _TOKEN = re.compile(r"\s*(\(|\)|AND\b|OR\b|[a-z_]+:[<>]?(?:'[^']*'|\d+|null))")

    def __init__(self, text: str) -> None:
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text):
            match = self._TOKEN.match(text, pos)
            if not match:
                if text[pos:].strip():
                    raise QueryError(text[pos:])
                break
            self.tokens.append(match.group(1))
            pos = match.end()
        self.pos = 0
        self.tree = self._or()
        if self.pos != len(self.tokens):
            raise QueryError("trailing tokens")

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _or(self) -> Any:
        return self._joined("OR", self._and)

    def _and(self) -> Any:
        return self._joined("AND", self._atom)

    def _joined(self, word: str, part: Callable[[], Any]) -> Any:
        parts = [part()]
        while self._peek() == word:
            self.pos += 1
            parts.append(part())
        return (word.lower(), parts)

    def _atom(self) -> Any:
        token = self._peek()
        if token is None or token in {"AND", "OR", ")"}:
            raise QueryError("expected a term")
        self.pos += 1
        if token == "(":
            inner = self._or()
            if self._peek() != ")":
                raise QueryError("unbalanced")
            self.pos += 1
            return inner
        field, _, value = token.partition(":")
        op = "="
        if value[:1] in "<>":
            op, value = value[0], value[1:]
        if field not in {"tag", "group_id", "priority", "status", "source", "category",
                         "updated_at", "agent_id"}:
            raise QueryError(field)
        return ("term", field, op, value.strip("'"))

    def matches(self, ticket: dict[str, Any], node: Any = None) -> bool:
        node = node or self.tree
        if node[0] == "or":
            return any(self.matches(ticket, n) for n in node[1])
        if node[0] == "and":
            return all(self.matches(ticket, n) for n in node[1])
        _, field, op, value = node
        if field == "tag":
            return value in ticket.get("tags", [])
        if field == "updated_at":
            day = _parse(ticket["updated_at"]).date().isoformat()
            return day > value if op == ">" else day < value
        if field == "category":
            return (ticket.get("category") or "").casefold() == value.casefold()
        actual = ticket.get("responder_id" if field == "agent_id" else field)
        return str(actual) == value


class FakeFreshservice:
    """Stateful fake implementing the contract suite's ``PlatformDouble``."""

    name = "freshservice"
    capabilities = Capabilities(channels=frozenset({"task", "announcement", "ticket_note"}),
                                survey_answers=True, filter_checks=True)

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock
        self.tickets: dict[int, dict[str, Any]] = {}
        self.conversations: dict[int, list[dict[str, Any]]] = {}
        self.tasks: dict[int, list[dict[str, Any]]] = {}
        self.announcements: dict[int, dict[str, Any]] = {}
        self.agents: dict[int, dict[str, Any]] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.csat: dict[int, dict[str, Any]] = {}
        self.requests: list[requests.PreparedRequest] = []
        self.queued: list[tuple[str, str, Response]] = []
        self.refusals: list[tuple[int, str]] = []
        self.page_size: int | None = None
        self.newest = datetime.now(UTC)
        self.rate_total = 500
        self.remaining: Callable[[int], int] = lambda n: self.rate_total - 1 - (n % 50)
        self._ids = iter(range(1001, 10**6))
        self._fail: bool | None = None
        self._writes = 0
        self._mutex = threading.RLock()
        self.me = self._agent("Api", "Integration", "api@acme.example")
        for method in ("GET", "POST", "PUT", "DELETE"):
            mock.add_callback(method, re.compile(re.escape(BASE) + r"/.*"),
                              callback=self._dispatch)

    # -- PlatformDouble ------------------------------------------------------------------

    def _agent(self, first: str, last: str, email: str, active: bool = True) -> dict[str, Any]:
        agent_id = next(self._ids)
        agent = {"id": agent_id, "first_name": first, "last_name": last, "email": email,
                 "active": active, "occasional": False, "group_ids": [], "roles": [],
                 "created_at": _ts(datetime.now(UTC)), "updated_at": _ts(datetime.now(UTC))}
        self.agents[agent_id] = agent
        return agent

    def add_person(self, name: str, email: str) -> Person:
        first, _, last = name.partition(" ")
        agent = self._agent(first, last, email)
        return Person(id=str(agent["id"]), name=name, platform="freshservice", email=email)

    def add_group(self, name: str, members: list[Person]) -> str:
        group_id = next(self._ids)
        self.groups[group_id] = {
            "id": group_id, "name": name, "description": None, "members": [m.id for m in members],
            "agent_ids": [m.id for m in members], "observers": [], "group_leaders": [],
            "created_at": _ts(datetime.now(UTC)), "updated_at": _ts(datetime.now(UTC)),
        }
        return name

    def add_ticket(self, *, title: str, opened_at: datetime, kind: str = "incident",
                   category: str | None = None, group: str | None = None,
                   channel: str | None = "portal", requester: Person | None = None) -> Ticket:
        ticket_id = next(self._ids)
        group_id = next((g["id"] for g in self.groups.values() if g["name"] == group), None)
        if group and group_id is None:
            self.add_group(group, [])
            group_id = next(g["id"] for g in self.groups.values() if g["name"] == group)
        payload = {
            "id": ticket_id, "subject": title, "description": f"<div>{html.escape(title)}</div>",
            "description_text": title, "status": 2, "priority": 2,
            "source": CHANNEL_SOURCES.get(channel or "", 2),
            "type": "Service Request" if kind == "service_request" else "Incident",
            "requester_id": int(requester.id) if requester else self.me["id"],
            "responder_id": None, "group_id": group_id, "category": category,
            "sub_category": None, "tags": [], "custom_fields": {}, "due_by": None,
            "fr_due_by": None, "is_escalated": False, "spam": False, "deleted": False,
            "created_at": _ts(opened_at), "updated_at": _ts(opened_at),
        }
        self.newest = max(self.newest, opened_at)
        self.tickets[ticket_id] = payload
        self.conversations[ticket_id] = []
        return self.ticket_model(ticket_id)

    def ticket_model(self, ticket_id: int) -> Ticket:
        groups = {g["id"]: g["name"] for g in self.groups.values()}
        return ticket_from_payload(self.tickets[ticket_id], platform="freshservice",
                                   base_url=BASE, groups=groups)

    def add_comment(self, ticket_id: str, author: Person, text: str, at: datetime,
                    internal: bool = False) -> None:
        tid = int(str(ticket_id).lstrip("#").split("-")[-1])
        self.conversations[tid].append(self._conversation(
            tid, f"<div>{html.escape(text)}</div>", int(author.id), internal, at))
        self.tickets[tid]["updated_at"] = _ts(max(at, _parse(self.tickets[tid]["updated_at"])))
        self.newest = max(self.newest, at)

    def _write_time(self) -> datetime:
        """The account's clock for a note: never behind anything already stored (tests add
        tickets at any time they like), so a note moves its ticket to the end of a list
        ordered by ``updated_at``, as on a real account."""
        self.newest = max(datetime.now(UTC), self.newest + timedelta(seconds=1))
        return self.newest

    def _conversation(self, tid: int, body: str, user_id: int, private: bool,
                      at: datetime) -> dict[str, Any]:
        return {"id": next(self._ids), "user_id": user_id, "body": body, "body_text": _text(body),
                "private": private, "incoming": False, "source": 2 if private else 0,
                "ticket_id": tid, "to_emails": [], "attachments": [],
                "created_at": _ts(at), "updated_at": _ts(at)}

    def _set_task(self, ref: EffectRef, at: datetime, done: bool) -> None:
        kind, _, rest = ref.remote_id.partition(":")
        if kind == "ticket":
            ticket = self.tickets[int(rest)]
            ticket["status"] = STATUS_RESOLVED if done else 2
            ticket["updated_at"] = _ts(at)
        else:
            parent, _, task_id = rest.partition(":")
            task = next(t for t in self.tasks[int(parent)] if t["id"] == int(task_id))
            task["status"] = TASK_COMPLETED if done else TASK_OPEN
            task["closed_at"] = _ts(at) if done else None
            task["updated_at"] = _ts(at)

    def complete_task(self, ref: EffectRef, at: datetime) -> None:
        self._set_task(ref, at, True)

    def reopen_task(self, ref: EffectRef, at: datetime) -> None:
        self._set_task(ref, at, False)

    def answer_survey(self, ref: EffectRef, person: Person, scores: Mapping[str, int],
                      text: str, at: datetime) -> None:
        """The requester answers the CSAT survey sent when the feedback ticket resolves."""
        self.complete_task(ref, at)
        self.csat[int(ref.remote_id.split(":")[1])] = {
            "id": next(self._ids), "overall_rating": 1, "created_at": _ts(at), "opinion": text,
            "questionnaire_responses": [
                {"question": {"question_text": f"Rate your {dimension} (1-5)"},
                 "answers": [{"answer_text": str(score)}]}
                for dimension, score in scores.items()]}

    @staticmethod
    def _key_of(text: str) -> str | None:
        match = _MARKER.search(html.unescape(text or ""))
        return match.group(1) if match else None

    @staticmethod
    def _ticket_kind(ticket: dict[str, Any]) -> EffectKind | None:
        """The kind the plugin wrote a ticket for, from its kind tag (``itsm-<kind>``)."""
        tags = ticket.get("tags") or []
        return next((k for k in EffectKind if kind_tag(str(k)) in tags), None)

    @staticmethod
    def _task_kind(task: dict[str, Any]) -> EffectKind | None:
        match = _KIND_LINE.search(html.unescape(task.get("description") or ""))
        return EffectKind(match.group(1)) if match else None

    @staticmethod
    def _note_kind(key: str) -> EffectKind:
        """Notes are prompts or ``ticket_note`` messages; the key names which."""
        return EffectKind.PROMPT if key.split(":")[2:3] == ["prompt"] else EffectKind.MESSAGE

    @staticmethod
    def _plain(text: str) -> str:
        text = re.sub(r"\s*itsm-change-kind:\S+\s*$", "", _text(text))
        return re.sub(r"\s*itsm-change-key:\S+\s*$", "", text).strip()

    def records(self, kind: EffectKind) -> list[RemoteRecord]:
        out: list[RemoteRecord] = []
        for ticket in self.tickets.values():
            if MANAGED_TAG not in ticket["tags"]:
                continue
            key = self._key_of(ticket["description"])
            if key and self._ticket_kind(ticket) == kind:
                due = _parse(ticket["due_by"]).date() if ticket.get("due_by") else None
                out.append(RemoteRecord(
                    key=key, kind=kind, remote_id=f"ticket:{ticket['id']}",
                    title=ticket["subject"], body=self._plain(ticket["description"]),
                    open=ticket["status"] not in (STATUS_RESOLVED, STATUS_CLOSED),
                    assignee=str(ticket["responder_id"]), due=due))
        for parent, tasks in self.tasks.items():
            for task in tasks:
                key = self._key_of(task["description"])
                if key and self._task_kind(task) == kind:
                    due = _parse(task["due_date"]).date() if task.get("due_date") else None
                    out.append(RemoteRecord(
                        key=key, kind=kind, remote_id=f"task:{parent}:{task['id']}",
                        title=task["title"], body=self._plain(task["description"]),
                        open=task["status"] != TASK_COMPLETED, assignee=str(task["agent_id"]),
                        due=due, ticket_id=str(parent)))
        for item in self.announcements.values():
            key = self._key_of(item["body_html"])
            if key and kind is EffectKind.MESSAGE:
                names = tuple(self.groups[g]["name"] for g in item["groups"])
                till = item.get("visible_till")
                out.append(RemoteRecord(
                    key=key, kind=kind, remote_id=f"announcement:{item['id']}",
                    title=item["title"], body=self._plain(item["body_html"]),
                    open=not till or _parse(till) > datetime.now(UTC), audience_groups=names))
        for tid, conversations in self.conversations.items():
            for conv in conversations:
                key = self._key_of(conv["body"])
                if key and self._note_kind(key) == kind:
                    out.append(RemoteRecord(
                        key=key, kind=kind, remote_id=f"note:{tid}:{conv['id']}", title="",
                        body=self._plain(conv["body"]), open=True, ticket_id=str(tid)))
        return out

    def fail_next_write(self, after_apply: bool) -> None:
        self._fail = after_apply

    def write_calls(self) -> int:
        return self._writes

    def request_count(self) -> int:
        """API requests received so far, reads and writes (the contract counts what a sync
        costs with it)."""
        return len(self.requests)

    def set_page_size(self, size: int) -> None:
        self.page_size = size

    def settings(self) -> dict[str, str]:
        return {"domain": BASE, "api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET}

    # -- test controls -------------------------------------------------------------------

    def queue(self, method: str, path: str, status: int, body: Any = None,
              headers: dict[str, str] | None = None) -> None:
        """Answer the next ``method path`` with this instead of the fake's own answer."""
        text = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
        self.queued.append((method, path, (status, headers or {}, text)))

    def webhook_request(self, ticket: Ticket, *, forged: bool = False) -> WebhookRequest:
        """The Workflow Automator's web request for a ticket update: the rendered payload
        template, with the shared secret header (a wrong one when ``forged``)."""
        from itsm_change_freshservice.webhook import payload_template

        text = payload_template("ticket_updated")
        for placeholder, value in (("{{ticket.id}}", ticket.number),
                                   ("{{ticket.subject}}", ticket.title),
                                   ("{{ticket.status}}", "Open"),
                                   ("{{ticket.latest_private_comment}}", "")):
            text = text.replace(placeholder, value)
        headers = {"Content-Type": "application/json",
                   "X-ITSM-Change-Secret": "not-the-secret" if forged else WEBHOOK_SECRET}
        return WebhookRequest(platform="freshservice", headers=headers, body=text.encode(),
                              secret=WEBHOOK_SECRET)

    def refuse_next_request(self, status: int) -> str:
        """Freshservice's error body: ``{"code", "message"}`` (401 and 403 as documented)."""
        code, message = {401: ("invalid_credentials",
                               "You have to be logged in to perform this action."),
                         403: ("access_denied",
                               "You are not authorized to perform this action.")}.get(
            status, ("error", "The request could not be processed."))
        self.refusals.append((status, json.dumps({"code": code, "message": message})))
        return message

    def calls(self, method: str, path: str) -> list[requests.PreparedRequest]:
        return [r for r in self.requests
                if r.method == method and urlsplit(r.url or "").path == path]

    # -- the HTTP side -------------------------------------------------------------------

    def _headers(self, used: int = 1) -> dict[str, str]:
        return {"X-Ratelimit-Total": str(self.rate_total),
                "X-Ratelimit-Remaining": str(max(0, self.remaining(len(self.requests)))),
                "X-Ratelimit-Used-CurrentRequest": str(used),
                "Content-Type": "application/json; charset=utf-8"}

    def _dispatch(self, request: requests.PreparedRequest) -> Response:
        # One request at a time, as the plugin writes several side by side.
        with self._mutex:
            return self._handle(request)

    def _handle(self, request: requests.PreparedRequest) -> Response:
        self.requests.append(request)
        parts = urlsplit(request.url or "")
        path, query = parts.path, dict(parse_qsl(parts.query))
        method = request.method or "GET"
        if self.refusals:
            status, text = self.refusals.pop(0)
            return status, self._headers(), text
        for index, (m, p, answer) in enumerate(self.queued):
            if m == method and p == path:
                del self.queued[index]
                status, headers, body = answer
                return status, {**self._headers(), **headers}, body
        expected = "Basic " + base64.b64encode(f"{API_KEY}:X".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return 401, self._headers(), json.dumps(
                {"code": "invalid_credentials",
                 "message": "You have to be logged in to perform this action."})
        body = json.loads(request.body) if request.body else {}
        if method in {"POST", "PUT", "DELETE"}:
            self._writes += 1
            if self._fail is not None:
                after, self._fail = self._fail, None
                if after:
                    self._route(method, path, query, body)
                raise requests.exceptions.ReadTimeout("read timed out")
        status, payload, used = self._route(method, path, query, body)
        headers = self._headers(used)
        if isinstance(payload, tuple):
            payload, link = payload
            if link:
                headers["Link"] = f'<{link}>; rel="next"'
        return status, headers, json.dumps(payload) if payload is not None else ""

    def _page(self, path: str, query: dict[str, str], name: str,
              items: list[dict[str, Any]]) -> tuple[int, Any, int]:
        per_page = int(query.get("per_page", 30))
        if per_page > 100:
            return 400, validation_error("per_page", "Has to be less than or equal to 100"), 1
        if self.page_size:
            per_page = min(per_page, self.page_size)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        link = None
        if page * per_page < len(items):
            link = f"{BASE}{path}?" + urlencode({**query, "page": page + 1})
        return 200, ({name: chunk}, link), 1

    def _route(self, method: str, path: str, query: dict[str, str],
               body: dict[str, Any]) -> tuple[int, Any, int]:
        not_found = (404, {"code": "not_found", "message": "Record not found"}, 1)
        m = re.fullmatch(r"/api/v2/(.+?)/?", path)
        route = m.group(1) if m else ""
        if method == "GET" and route == "agents/me":
            return 200, {"agent": self.me}, 1
        if method == "GET" and route == "agents":
            agents = [a for a in self.agents.values()
                      if query.get("active") != "true" or a["active"]]
            return self._page(path, query, "agents", agents)
        if method == "GET" and (m := re.fullmatch(r"agents/(\d+)", route)):
            agent = self.agents.get(int(m.group(1)))
            return (200, {"agent": agent}, 1) if agent else not_found
        if method == "GET" and route == "agent_groups":
            return self._page(path, query, "agent_groups", list(self.groups.values()))
        if method == "GET" and route == "ticket_form_fields":
            used = sorted({t["category"] for t in self.tickets.values() if t.get("category")})
            choices = [{"id": n, "value": c, "nested_options": []}
                       for n, c in enumerate(dict.fromkeys([*used, "Hardware", "Software"]), 1)]
            return 200, {"ticket_fields": [
                {"id": 1, "name": "subject", "label": "Subject", "field_type": "default_subject"},
                {"id": 2, "name": "category", "label": "Category",
                 "field_type": "nested_field", "choices": choices}]}, 1
        if route == "tickets/filter":
            return self._filter(query)
        if route == "tickets":
            return self._tickets(method, path, query, body)
        if m := re.fullmatch(r"tickets/(\d+)(/.*)?", route):
            tid, rest = int(m.group(1)), m.group(2) or ""
            if tid not in self.tickets:
                return not_found
            return self._ticket(method, path, query, body, tid, rest)
        if route.startswith("announcements"):
            return self._announcements(method, path, query, body, route)
        return not_found

    def _tickets(self, method: str, path: str, query: dict[str, str],
                 body: dict[str, Any]) -> tuple[int, Any, int]:
        if method == "POST":
            return self._create_ticket(body)
        now = datetime.now(UTC)
        items = list(self.tickets.values())
        if "updated_since" in query:
            since = _parse(query["updated_since"])
            items = [t for t in items if _parse(t["updated_at"]) >= since]
        else:
            items = [t for t in items if _parse(t["created_at"]) >= now - timedelta(days=30)]
        items.sort(key=lambda t: (t["updated_at"], t["id"]),
                   reverse=query.get("order_type", "desc") != "asc")
        used = 1
        if query.get("include") == "stats":
            used = 3
            items = [{**t, "stats": self._stats(t)} for t in items]
        status, payload, _ = self._page(path, query, "tickets", items)
        return status, payload, used

    @staticmethod
    def _stats(ticket: dict[str, Any]) -> dict[str, Any]:
        return {"resolved_at": ticket.get("_resolved_at"), "closed_at": None,
                "first_responded_at": None, "agent_responded_at": None}

    def _create_ticket(self, body: dict[str, Any]) -> tuple[int, Any, int]:
        for field in ("subject", "description", "status", "priority"):
            if field not in body:
                return 400, validation_error(field, "It should not be blank", "missing_field"), 1
        if "email" not in body and "requester_id" not in body:
            return 400, validation_error("requester_id", "Please specify a requester",
                                         "missing_field"), 1
        if body.get("responder_id") is not None and body["responder_id"] not in self.agents:
            return 400, validation_error("responder_id", "There is no agent matching the "
                                         "given responder_id", "invalid_value"), 1
        ticket_id = next(self._ids)
        now = _ts(datetime.now(UTC))
        ticket = {"id": ticket_id, "type": "Incident", "group_id": None, "category": None,
                  "custom_fields": {}, "tags": [], "due_by": None, "fr_due_by": None,
                  "source": 2, "requester_id": body.get("requester_id", self.me["id"]),
                  **{k: v for k, v in body.items() if k != "email"},
                  "description_text": _text(body["description"]),
                  "created_at": now, "updated_at": now}
        self.tickets[ticket_id] = ticket
        self.conversations[ticket_id] = []
        return 201, {"ticket": ticket}, 1

    def _ticket(self, method: str, path: str, query: dict[str, str], body: dict[str, Any],
                tid: int, rest: str) -> tuple[int, Any, int]:
        ticket = self.tickets[tid]
        now = _ts(datetime.now(UTC))
        if rest == "":
            if method == "PUT":
                ticket.update(body)
                if "description" in body:
                    ticket["description_text"] = _text(body["description"])
                if body.get("status") in (STATUS_RESOLVED, STATUS_CLOSED):
                    ticket["_resolved_at"] = now
                ticket["updated_at"] = now
            out = {k: v for k, v in ticket.items() if not k.startswith("_")}
            if query.get("include") == "stats":
                out["stats"] = self._stats(ticket)
                return 200, {"ticket": out}, 2
            return 200, {"ticket": out}, 1
        if rest == "/notes" and method == "POST":
            at = self._write_time()
            conv = self._conversation(tid, body["body"], self.me["id"],
                                      body.get("private", True), at)
            self.conversations[tid].append(conv)
            ticket["updated_at"] = _ts(at)
            return 201, {"conversation": conv}, 1
        if rest == "/conversations" and method == "GET":
            return self._page(path, query, "conversations", self.conversations[tid])
        if m := re.fullmatch(r"/conversations/(\d+)", rest):
            conv = next((c for c in self.conversations[tid] if c["id"] == int(m.group(1))), None)
            if conv is None:
                return 404, None, 1
            conv.update(body, body_text=_text(body.get("body", conv["body"])), updated_at=now)
            return 200, {"conversation": conv}, 1
        tasks = self.tasks.setdefault(tid, [])
        if rest == "/tasks" and method == "POST":
            task = {"id": next(self._ids), "agent_id": body.get("agent_id"), "group_id": None,
                    "status": body.get("status", TASK_OPEN), "parent_id": tid,
                    "parent_type": "Ticket", "due_date": body.get("due_date"),
                    "notify_before": 0, "title": body["title"],
                    "description": body.get("description", ""), "created_by": self.me["id"],
                    "created_at": now, "updated_at": now, "closed_at": None}
            tasks.append(task)
            return 201, {"task": task}, 1
        if rest == "/tasks" and method == "GET":
            return self._page(path, query, "tasks", tasks)
        if m := re.fullmatch(r"/tasks/(\d+)", rest):
            task = next((t for t in tasks if t["id"] == int(m.group(1))), None)
            if task is None:
                return 404, None, 1
            if method == "PUT":
                task.update(body, updated_at=now)
            return 200, {"task": task}, 1
        if rest == "/csat_response" and method == "GET":
            return (200, {"csat_response": self.csat[tid]}, 1) if tid in self.csat else (
                404, None, 1)
        return 404, None, 1

    def _filter(self, query: dict[str, str]) -> tuple[int, Any, int]:
        text = query.get("query", "")
        invalid = (400, validation_error("query", "Invalid filter query format"), 1)
        if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
            return invalid
        try:
            parsed = FilterQuery(text[1:-1])
        except QueryError:
            return invalid
        found = [t for t in self.tickets.values() if parsed.matches(t)]
        page = int(query.get("page", 1))
        if page > 10:  # the endpoint answers ten pages of 30 at most
            return 400, validation_error("page", "Has to be less than or equal to 10"), 1
        chunk = found[(page - 1) * 30: page * 30]
        return 200, {"tickets": [{k: v for k, v in t.items() if not k.startswith("_")}
                                 for t in chunk], "total": len(found)}, 1

    def _announcements(self, method: str, path: str, query: dict[str, str],
                       body: dict[str, Any], route: str) -> tuple[int, Any, int]:
        now = _ts(datetime.now(UTC))
        if route == "announcements" and method == "POST":
            if not body.get("title") or not body.get("body_html"):
                return 400, validation_error("title", "It should not be blank",
                                             "missing_field"), 1
            unknown = [g for g in body.get("groups", []) if g not in self.groups]
            if unknown:
                return 400, validation_error("groups", "Invalid group ids"), 1
            item_id = next(self._ids)
            item = {"id": item_id, "created_by": self.me["id"], "state": "active",
                    "body": _text(body["body_html"]), "departments": [], "groups": [],
                    "is_read": False, "send_email": False, "additional_emails": [],
                    "visible_till": None, **body, "created_at": now, "updated_at": now}
            self.announcements[item_id] = item
            return 201, {"announcement": item}, 1
        if route == "announcements" and method == "GET":
            items = [a for a in self.announcements.values()
                     if query.get("state") in (None, self._state(a))]
            return self._page(path, query, "announcements", items)
        m = re.fullmatch(r"announcements/(\d+)", route)
        item = self.announcements.get(int(m.group(1))) if m else None
        if item is None:
            return 404, None, 1
        if method == "PUT":
            item.update(body, updated_at=now)
            if "body_html" in body:
                item["body"] = _text(body["body_html"])
        return 200, {"announcement": item}, 1

    @staticmethod
    def _state(item: dict[str, Any]) -> str:
        now = datetime.now(UTC)
        if item.get("visible_till") and _parse(item["visible_till"]) <= now:
            return "archived"
        if _parse(item["visible_from"]) > now:
            return "scheduled"
        return "active"


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def fake(mock):
    return FakeFreshservice(mock)


@pytest.fixture
def double(fake):
    return fake


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_platform(fake, sleeps):
    def make(**overrides: Any) -> FreshservicePlatform:
        options: dict[str, Any] = {"domain": BASE, "api_key": API_KEY,
                                   "webhook_secret": WEBHOOK_SECRET, "sleep": sleeps.append}
        options.update(overrides)
        return FreshservicePlatform(**options)

    return make


@pytest.fixture
def platform(make_platform):
    instance = make_platform()
    yield instance
    instance.close()


def due_in(days: int) -> date:
    return (datetime.now(UTC) + timedelta(days=days)).date()


@pytest.fixture
def api_key():
    return API_KEY


@pytest.fixture
def webhook_secret():
    return WEBHOOK_SECRET
