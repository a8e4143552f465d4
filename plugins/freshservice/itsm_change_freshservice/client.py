"""The Freshservice platform instance: the core's platform hooks over API v2.

Where things live (``EffectRef.remote_id``): ``ticket:<id>``, ``task:<ticket>:<task>``,
``announcement:<id>`` and ``note:<ticket>:<conversation>``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from itsm_change_sdk.config import http_timeout
from itsm_change_sdk.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    UnsupportedOperation,
)
from itsm_change_sdk.hookspecs import hookimpl
from itsm_change_sdk.http import RetryPolicy, Transport, create_once, is_uncertain
from itsm_change_sdk.model import (
    Check,
    Comment,
    Effect,
    EffectKind,
    EffectRef,
    EffectResult,
    FeedbackResponse,
    InstallStep,
    Person,
    Program,
    Ticket,
    TicketEvent,
    TicketFilter,
    TrainingStatus,
    Unit,
    WebhookRequest,
    utcnow,
)

from . import admin, directory, webhook
from .api import FreshserviceAPI, error_body, make_pacer, plan_limits
from .mapping import (
    MANAGED_TAG,
    STATUS_CLOSED,
    STATUS_OPEN,
    STATUS_RESOLVED,
    TASK_COMPLETED,
    TASK_OPEN,
    body_html,
    carries_key,
    comment_from_conversation,
    due_datetime,
    fs_time,
    has_any_marker,
    is_managed,
    key_tag,
    kind_line,
    kind_tag,
    marker,
    normalize_domain,
    parse_ticket_number,
    parse_time,
    ticket_from_payload,
)
from .query import NO_MATCH, filter_query, tag_queries
from .settings import PLATFORM_NAME, SETTINGS
from .surveys import response_from_csat

__all__ = ["FreshservicePlatform"]

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_Keyed = TypeVar("_Keyed", Effect, EffectRef)
_WRITE_CHANNELS = {"announcement", "task", "ticket_note"}


def _failed(key: str, exc: APIError) -> EffectResult:
    uncertain = is_uncertain(exc)
    return EffectResult(key=key, ok=False, error=str(exc), uncertain=uncertain,
                        retryable=exc.retryable or uncertain)


class FreshservicePlatform:
    """One Freshservice account. Build it with :meth:`from_settings`."""

    name = PLATFORM_NAME
    write_chunk = 25
    """Notes per write call the sync hands over: one note per request, so many small calls
    side by side keep more requests in flight than a few large ones."""

    def __init__(
        self,
        *,
        domain: str,
        api_key: str,
        training_mode: str = "ticket",
        training_ticket: str | int | None = None,
        requester_email: str | None = None,
        plan: str | None = None,
        webhook_secret: str | None = None,
        page_size: int = 100,
        include_stats: bool = True,
        workspace_id: str | None = None,
        write_concurrency: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
        timeout: tuple[float, float] = (5.0, 30.0),
    ) -> None:
        self.base_url = normalize_domain(domain)
        if not api_key:
            raise ConfigurationError("freshservice: api_key is empty")
        if training_mode not in {"ticket", "task"}:
            raise ConfigurationError(
                f"freshservice: training_mode {training_mode!r} must be 'ticket' (one ticket per "
                "person) or 'task' (a task per person on training_ticket)"
            )
        self.training_mode = training_mode
        self.parent_ticket: int | None = None
        if training_mode == "task":
            parsed = parse_ticket_number(training_ticket) if training_ticket else None
            if parsed is None:
                raise ConfigurationError(
                    "freshservice: training_mode 'task' needs training_ticket, the id of the "
                    "ticket the tasks hang on (e.g. 1234 or #SR-1234)"
                )
            self.parent_ticket = parsed
        if not 1 <= page_size <= 100:
            raise ConfigurationError("freshservice: page_size must be between 1 and 100")
        if not 1 <= write_concurrency <= 32:
            raise ConfigurationError("freshservice: write_concurrency must be between 1 and 32")
        self.write_concurrency = write_concurrency
        self.plan = plan
        plan_limits(plan)
        self.requester_email = requester_email or None
        self.webhook_secret = webhook_secret or None
        self.include_stats = include_stats
        self.now = now
        self.policy = RetryPolicy(sleep=sleep)
        self.pacer = make_pacer(plan, clock=clock, sleep=sleep)
        self.transport = Transport(
            PLATFORM_NAME, self.base_url, auth=(api_key, "X"), timeout=timeout,
            policy=self.policy, pacer=self.pacer, secrets=[api_key, webhook_secret],
            headers={"Content-Type": "application/json"}, error_parser=error_body,
        )
        self.api = FreshserviceAPI(self.transport, page_size=page_size,
                                   workspace_id=workspace_id or None)
        self.directory = directory.Directory(self.api)
        self._groups: dict[int, str] | None = None
        self._unknown_groups: set[int] = set()
        self._agents_by_email: dict[str, int | None] = {}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> FreshservicePlatform:
        typed = SETTINGS.resolve(settings)
        return cls(
            domain=typed["domain"],
            api_key=typed["api_key"],
            training_mode=typed["training_mode"],
            training_ticket=typed["training_ticket"],
            requester_email=typed["requester_email"],
            plan=typed["plan"],
            webhook_secret=typed["webhook_secret"],
            page_size=typed["page_size"],
            include_stats=typed["include_stats"],
            workspace_id=typed["workspace_id"],
            write_concurrency=typed["write_concurrency"],
            timeout=http_timeout(PLATFORM_NAME, typed),
        )

    def __repr__(self) -> str:
        return f"FreshservicePlatform({self.base_url!r}, training_mode={self.training_mode!r})"

    def close(self) -> None:
        self.transport.close()

    # -- helpers ---------------------------------------------------------------------------

    def groups(self, refresh: bool = False) -> dict[int, str]:
        """Agent group ids to names, read once per instance (again when one is missing)."""
        if self._groups is None or refresh:
            self._groups = {int(g["id"]): str(g.get("name") or "")
                            for g in self.api.agent_groups() if "id" in g}
        return self._groups

    def _group_ids(self, names: Iterable[str]) -> dict[str, int | None]:
        names = list(names)
        known = {name.casefold() for name in self.groups().values()}
        if any(name.casefold() not in known for name in names):
            self.groups(refresh=True)
        by_name = {name.casefold(): gid for gid, name in self.groups().items()}
        out: dict[str, int | None] = {}
        for name in names:
            out[name] = by_name.get(name.casefold())
            if out[name] is None and name.isdigit() and int(name) in self.groups():
                out[name] = int(name)
        return out

    def _ticket(self, payload: Mapping[str, Any]) -> Ticket:
        group_id = payload.get("group_id")
        if isinstance(group_id, int) and group_id not in self.groups() \
                and group_id not in self._unknown_groups:
            self._unknown_groups.add(group_id)
            self.groups(refresh=True)
        return ticket_from_payload(payload, platform=PLATFORM_NAME, base_url=self.base_url,
                                   groups=self.groups())

    def _ref(self, key: str, remote_id: str, ticket_id: int | None = None) -> EffectRef:
        url = f"{self.base_url}/a/tickets/{ticket_id}" if ticket_id else None
        return EffectRef(key=key, platform=PLATFORM_NAME, remote_id=remote_id, url=url)

    def _run(self, items: Sequence[_Keyed], one: Callable[[_Keyed], EffectResult]
             ) -> list[EffectResult]:
        """``one`` per item, ``write_concurrency`` at a time (Freshservice has no bulk
        endpoint; the pacer keeps them within the account's budget); an API error fails that
        item only, a refused key fails all."""

        def guarded(item: _Keyed) -> EffectResult:
            try:
                return one(item)
            except (AuthenticationError, PermissionDenied):
                raise
            except APIError as exc:
                return _failed(item.key, exc)

        workers = min(self.write_concurrency, len(items))
        if workers <= 1:
            return [guarded(item) for item in items]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(guarded, items))

    def _upsert(
        self,
        effect: Effect,
        known: EffectRef | None,
        kind: str,
        update: Callable[[EffectRef, list[int]], EffectRef],
        send: Callable[[], EffectRef],
        find: Callable[[Sequence[str]], Mapping[str, EffectRef]],
    ) -> EffectResult:
        """Update the ``kind`` record ``known`` names (``update`` gets the ids in its remote id);
        when there is none or it is gone, create it once, looking it up with ``find`` after an
        uncertain failure."""
        if known is not None and known.remote_id.startswith(f"{kind}:"):
            ids = [int(part) for part in known.remote_id.split(":")[1:]]
            try:
                return EffectResult(key=effect.key, ok=True, ref=update(known, ids))
            except NotFound:
                pass
        ref = create_once(send, lambda: find([effect.key]).get(effect.key), self.policy)
        return EffectResult(key=effect.key, ok=True, ref=ref)

    # -- assignments: tickets or tasks -----------------------------------------------------

    def _agent_id(self, person: Person) -> int | None:
        """The Freshservice agent id of a recipient: its id when numeric, else the active
        agent with its email (alliance members are named by slug in a program file), read
        once per email with ``GET /api/v2/agents?email=``."""
        if person.id.isdigit():
            return int(person.id)
        if not person.email:
            return None
        email = person.email.strip().casefold()
        if email not in self._agents_by_email:
            self._agents_by_email[email] = next(
                (int(a["id"]) for a in self.api.agents(email=person.email.strip())
                 if str(a.get("email") or "").casefold() == email and a.get("active", True)
                 and "id" in a), None)
        return self._agents_by_email[email]

    def _assignment_ticket(self, effect: Effect, agent: int) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "subject": effect.title,
            "description": body_html(effect.body, effect.key),
            "responder_id": agent,
            "status": STATUS_OPEN,
            "priority": 2,
            "source": 2,
            "tags": [MANAGED_TAG, kind_tag(str(effect.kind)), key_tag(effect.key)],
        }
        if self.requester_email:
            payload["email"] = self.requester_email
        else:
            payload["requester_id"] = agent
        due = due_datetime(effect.due, self.now())
        if due:
            payload["due_by"] = due
            payload["fr_due_by"] = due
        return payload

    def _assignment_task(self, effect: Effect, agent: int) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "agent_id": agent,
            "title": effect.title,
            "description": "\n\n".join([effect.body, marker(effect.key)])
            + "\n" + kind_line(str(effect.kind)),
            "status": TASK_OPEN,
        }
        due = due_datetime(effect.due, self.now())
        if due:
            payload["due_date"] = due
        return payload

    def _write_assignment(self, effect: Effect, known: EffectRef | None) -> EffectResult:
        if effect.recipient is None:
            return EffectResult(key=effect.key, ok=False,
                                error="needs a recipient (a Freshservice agent)")
        agent = self._agent_id(effect.recipient)
        if agent is None:
            who = effect.recipient
            return EffectResult(
                key=effect.key, ok=False,
                error=f"recipient {who.id!r} ({who.email or 'no email'}) is not a Freshservice "
                      "agent: the id is not an agent id and no active agent has that email; "
                      "add the person as an agent or fix their email in the program")
        if self.training_mode == "task":
            return self._write_task(effect, known, agent)
        payload = self._assignment_ticket(effect, agent)

        def update(ref: EffectRef, ids: list[int]) -> EffectRef:
            self.api.update_ticket(ids[0], {k: v for k, v in payload.items()
                                            if k not in {"status", "source", "tags"}})
            return self._ref(effect.key, ref.remote_id, ids[0])

        def send() -> EffectRef:
            ticket = self.api.create_ticket(payload)
            return self._ref(effect.key, f"ticket:{ticket['id']}", int(ticket["id"]))

        return self._upsert(effect, known, "ticket", update, send, self._find_ticket_refs)

    def _write_task(self, effect: Effect, known: EffectRef | None, agent: int) -> EffectResult:
        parent = self.parent_ticket
        assert parent is not None
        payload = self._assignment_task(effect, agent)

        def update(ref: EffectRef, ids: list[int]) -> EffectRef:
            self.api.update_task(ids[0], ids[1],
                                 {k: v for k, v in payload.items() if k != "status"})
            return ref

        def send() -> EffectRef:
            task = self.api.create_task(parent, payload)
            return self._ref(effect.key, f"task:{parent}:{task['id']}", parent)

        return self._upsert(effect, known, "task", update, send, self._find_task_refs)

    def _find_ticket_refs(self, keys: Sequence[str]) -> dict[str, EffectRef]:
        """Keys to tickets by their key tag: a filter query, tags OR-ed in batches."""
        wanted = {key_tag(k): k for k in keys}
        found: dict[str, EffectRef] = {}
        for tags, query in tag_queries(wanted):
            try:
                tickets: Iterable[dict[str, Any]] = list(self.api.filter_tickets(query))
            except InvalidRequest:
                # Tag filtering is not confirmed for every account: fall back to reading the
                # last 30 days of updates, which still holds any record just written.
                since = fs_time(self.now() - timedelta(days=30))
                tickets = self.api.tickets(updated_since=since)
            for ticket in tickets:
                for tag in ticket.get("tags") or []:
                    if tag in wanted and tag in tags:
                        key = wanted[tag]
                        found[key] = self._ref(key, f"ticket:{ticket['id']}", int(ticket["id"]))
            if len(found) == len(wanted):
                break
        return found

    def _find_task_refs(self, keys: Sequence[str]) -> dict[str, EffectRef]:
        if self.parent_ticket is None:
            return {}
        found: dict[str, EffectRef] = {}
        for task in self.api.tasks(self.parent_ticket):
            for key in keys:
                if carries_key(task, key, "description", "title"):
                    found[key] = self._ref(key, f"task:{self.parent_ticket}:{task['id']}",
                                           self.parent_ticket)
        return found

    # -- notes and announcements -----------------------------------------------------------

    def _write_note(self, effect: Effect, known: EffectRef | None) -> EffectResult:
        if not effect.ticket_id:
            return EffectResult(
                key=effect.key, ok=False,
                error="a ticket_note needs the ticket to post on: give the communication a "
                      f"record for {PLATFORM_NAME} (record: {{{PLATFORM_NAME}: <ticket id>}})")
        tid = parse_ticket_number(effect.ticket_id)
        if tid is None:
            return EffectResult(key=effect.key, ok=False,
                                error=f"{effect.ticket_id!r} is not a Freshservice ticket id")
        payload = {"body": body_html(effect.body, effect.key), "private": True}

        def update(ref: EffectRef, ids: list[int]) -> EffectRef:
            self.api.update_note(ids[0], ids[1], {"body": payload["body"]})
            return ref

        def send() -> EffectRef:
            note = self.api.create_note(tid, payload)
            return self._ref(effect.key, f"note:{tid}:{note['id']}", tid)

        return self._upsert(effect, known, "note", update, send,
                            lambda keys: self._find_notes_on(tid, keys))

    def _find_notes_on(self, ticket_id: int, keys: Sequence[str]) -> dict[str, EffectRef]:
        """The notes on one ticket that carry any of ``keys`` (one read of its conversations)."""
        found: dict[str, EffectRef] = {}
        try:
            for conversation in self.api.conversations(ticket_id):
                for key in keys:
                    if key not in found and carries_key(conversation, key, "body", "body_text"):
                        found[key] = self._ref(key, f"note:{ticket_id}:{conversation['id']}",
                                               ticket_id)
                if len(found) == len(keys):
                    break
        except NotFound:
            return {}
        return found

    def _find_note_refs(self, keys: Sequence[str]) -> dict[str, EffectRef]:
        """Notes' keys end with ``:<ticket id or number>``: read each named ticket once."""
        by_ticket: dict[int, list[str]] = {}
        for key in keys:
            tid = parse_ticket_number(key.rsplit(":", 1)[-1])
            if tid is not None:
                by_ticket.setdefault(tid, []).append(key)
        found: dict[str, EffectRef] = {}
        for tid, ticket_keys in by_ticket.items():
            found.update(self._find_notes_on(tid, ticket_keys))
        return found

    def _write_announcement(self, effect: Effect, known: EffectRef | None) -> EffectResult:
        ids = self._group_ids(effect.audience_groups)
        missing = [name for name, gid in ids.items() if gid is None]
        if missing:
            return EffectResult(key=effect.key, ok=False,
                                error=f"no agent group named {', '.join(missing)}")
        payload: dict[str, Any] = {
            "title": effect.title,
            "body_html": body_html(effect.body, effect.key),
            "visible_from": fs_time(effect.visible_from or self.now()),
            "visibility": "agents_and_groups",
            "groups": sorted(gid for gid in ids.values() if gid is not None),
        }
        if effect.visible_until:
            payload["visible_till"] = fs_time(effect.visible_until)

        def update(ref: EffectRef, ids: list[int]) -> EffectRef:
            self.api.update_announcement(ids[0], payload)
            return ref

        def send() -> EffectRef:
            item = self.api.create_announcement(payload)
            return self._ref(effect.key, f"announcement:{item['id']}")

        return self._upsert(effect, known, "announcement", update, send,
                            self._find_announcements)

    def _find_announcements(self, keys: Sequence[str]) -> dict[str, EffectRef]:
        found: dict[str, EffectRef] = {}
        for state in ("active", "scheduled", "archived"):
            for item in self.api.announcements(state):
                for key in keys:
                    if key not in found and carries_key(item, key, "body_html", "body"):
                        found[key] = self._ref(key, f"announcement:{item['id']}")
            if found.keys() >= set(keys):
                break
        return found

    # -- training --------------------------------------------------------------------------

    @hookimpl
    def itsm_change_publish_training(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        return self._run(effects, lambda e: self._write_assignment(e, known.get(e.key)))

    @hookimpl
    def itsm_change_training_status(self, refs: Sequence[EffectRef]) -> list[TrainingStatus]:
        statuses: list[TrainingStatus] = []
        tasks: dict[str, dict[str, dict[str, Any]]] = {}
        for ref in refs:
            kind, _, rest = ref.remote_id.partition(":")
            if kind == "ticket":
                try:
                    ticket = self.api.ticket(int(rest))
                except NotFound:
                    continue
                done = ticket.get("status") in (STATUS_RESOLVED, STATUS_CLOSED)
                statuses.append(TrainingStatus(
                    key=ref.key, completed=done,
                    completed_at=parse_time(ticket.get("updated_at")) if done else None))
            elif kind == "task":
                parent, _, task_id = rest.partition(":")
                if parent not in tasks:
                    tasks[parent] = {str(t["id"]): t for t in self.api.tasks(int(parent))}
                task = tasks[parent].get(task_id)
                if task is None:
                    continue
                done = task.get("status") == TASK_COMPLETED
                when = parse_time(task.get("closed_at")) or parse_time(task.get("updated_at"))
                statuses.append(TrainingStatus(key=ref.key, completed=done,
                                               completed_at=when if done else None))
        return statuses

    @hookimpl
    def itsm_change_retire_effects(self, refs: Sequence[EffectRef]) -> list[EffectResult]:
        def retire(ref: EffectRef) -> EffectResult:
            kind, _, rest = ref.remote_id.partition(":")
            try:
                if kind == "ticket":
                    self.api.update_ticket(int(rest), {"status": STATUS_CLOSED})
                elif kind == "task":
                    parent, _, task_id = rest.partition(":")
                    self.api.update_task(int(parent), int(task_id), {"status": TASK_COMPLETED})
                elif kind == "announcement":
                    self.api.update_announcement(int(rest),
                                                 {"visible_till": fs_time(self.now())})
            except NotFound:
                pass
            return EffectResult(key=ref.key, ok=True, ref=ref)

        return self._run(refs, retire)

    # -- communication and feedback --------------------------------------------------------

    @hookimpl
    def itsm_change_deliver_communication(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        for effect in effects:
            if effect.channel not in _WRITE_CHANNELS:
                raise UnsupportedOperation(
                    f"freshservice: channel {effect.channel!r} is not supported "
                    f"(supported: {', '.join(sorted(_WRITE_CHANNELS))})"
                )

        def one(effect: Effect) -> EffectResult:
            ref = known.get(effect.key)
            if effect.channel == "announcement":
                return self._write_announcement(effect, ref)
            if effect.channel == "ticket_note":
                return self._write_note(effect, ref)
            return self._write_assignment(effect, ref)

        return self._run(effects, one)

    @hookimpl
    def itsm_change_request_feedback(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        return self._run(effects, lambda e: self._write_assignment(e, known.get(e.key)))

    def _conversations_of(self, tickets: Iterable[Mapping[str, Any]]
                          ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Each ticket's conversations (one read a ticket: Freshservice has no listing of
        conversations across tickets), ``write_concurrency`` reads side by side, a page of
        tickets at a time; a ticket deleted meanwhile is left out."""

        def read(tid: int) -> tuple[int, list[dict[str, Any]] | None]:
            try:
                return tid, list(self.api.conversations(tid))
            except NotFound:
                return tid, None

        page: list[int] = []
        with ThreadPoolExecutor(max_workers=self.write_concurrency) as pool:
            for ticket in itertools.chain(tickets, [None]):
                if ticket is not None:
                    page.append(int(ticket["id"]))
                if page and (ticket is None or len(page) >= self.api.page_size):
                    for tid, conversations in pool.map(read, page):
                        if conversations is not None:
                            yield tid, conversations
                    page = []

    @hookimpl
    def itsm_change_find_comments(self, marker: str, since: datetime | None) -> Iterator[Comment]:
        tickets = self.api.tickets(updated_since=fs_time(since or EPOCH))
        for tid, conversations in self._conversations_of(tickets):
            for conversation in conversations:
                if has_any_marker(conversation, "body", "body_text"):
                    continue
                comment = comment_from_conversation(conversation, platform=PLATFORM_NAME,
                                                    ticket_id=str(tid))
                if marker in comment.text and (since is None or comment.created_at > since):
                    yield comment

    @hookimpl
    def itsm_change_collect_survey_answers(
        self, program: Program, since: datetime | None
    ) -> Iterator[FeedbackResponse]:
        """CSAT answers on the feedback-request tickets (shape unconfirmed, see README)."""
        feedback_tag = kind_tag(str(EffectKind.FEEDBACK_REQUEST))
        for ticket in self.api.tickets(updated_since=fs_time(since or EPOCH)):
            if feedback_tag not in (ticket.get("tags") or []):
                continue
            if ticket.get("status") not in (STATUS_RESOLVED, STATUS_CLOSED):
                continue
            try:
                csat = self.api.csat_response(int(ticket["id"]))
            except NotFound:
                continue
            if csat is None:
                continue
            response = response_from_csat(csat, ticket=ticket, program=program,
                                          platform=PLATFORM_NAME)
            if response and (since is None or response.submitted_at > since):
                yield response

    # -- tickets and prompts ---------------------------------------------------------------

    @hookimpl
    def itsm_change_stream_tickets(self, since: datetime | None) -> Iterator[Ticket]:
        include = "stats" if self.include_stats else None
        for payload in self.api.tickets(updated_since=fs_time(since or EPOCH), include=include):
            if is_managed(payload):
                continue
            ticket = self._ticket(payload)
            if since is None or ticket.updated_at > since:
                yield ticket

    def filter_query(self, filter: TicketFilter, since: datetime | None,
                     open_only: bool) -> str | None:
        """The narrowing filter query (see :func:`.query.filter_query`)."""
        return filter_query(filter, since, open_only, self._group_ids)

    @hookimpl
    def itsm_change_find_tickets(
        self, filter: TicketFilter, since: datetime | None, open_only: bool
    ) -> Iterator[Ticket]:
        if filter.platform and filter.platform != PLATFORM_NAME:
            return
        query = self.filter_query(filter, since, open_only)
        if query == NO_MATCH:
            return
        candidates: Iterable[Ticket]
        if query is None:
            candidates = self.itsm_change_stream_tickets(since)
        else:
            # A query the account refuses fails this prompt alone, with Freshservice's
            # message: never a fall-back to reading the whole ticket list.
            found = [self._ticket(t) for t in self.api.filter_tickets(
                query, since.date() - timedelta(days=1) if since else None)
                     if not is_managed(t)]
            candidates = sorted(found, key=lambda t: t.updated_at)
        for ticket in candidates:
            if since is not None and ticket.updated_at <= since:
                continue
            if open_only and not ticket.is_open:
                continue
            if filter.matches(ticket):
                yield ticket

    @hookimpl
    def itsm_change_get_ticket(self, ticket_id: str) -> Ticket | None:
        tid = parse_ticket_number(ticket_id)
        if tid is None:
            return None
        try:
            payload = self.api.ticket(tid, include="stats" if self.include_stats else None)
        except NotFound:
            return None
        return self._ticket(payload)

    @hookimpl
    def itsm_change_post_prompts(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        def one(effect: Effect) -> EffectResult:
            if effect.key in known:
                return EffectResult(key=effect.key, ok=True, ref=known[effect.key])
            return self._write_note(effect, None)

        return self._run(effects, one)

    @hookimpl
    def itsm_change_find_effects(self, kind: EffectKind, keys: Sequence[str]) -> list[EffectRef]:
        found: dict[str, EffectRef] = {}
        if kind in (EffectKind.TRAINING, EffectKind.FEEDBACK_REQUEST, EffectKind.MESSAGE):
            lookup = self._find_task_refs if self.training_mode == "task" else \
                self._find_ticket_refs
            found.update(lookup(keys))
        if kind == EffectKind.MESSAGE:
            remaining = [k for k in keys if k not in found]
            if remaining:
                found.update(self._find_announcements(remaining))
        if kind in (EffectKind.PROMPT, EffectKind.MESSAGE):
            found.update(self._find_note_refs([k for k in keys if k not in found]))
        return [found[k] for k in keys if k in found]

    # -- directory -------------------------------------------------------------------------

    @hookimpl
    def itsm_change_unit_members(self, unit: Unit) -> list[Person]:
        return directory.unit_members(self.directory, unit)

    # -- admin and events ------------------------------------------------------------------

    @hookimpl
    def itsm_change_doctor(self) -> list[Check]:
        return admin.doctor(self)

    @hookimpl
    def itsm_change_check_filters(self, program: Program) -> list[Check]:
        return admin.check_filters(self, program)

    @hookimpl
    def itsm_change_install(
        self, webhook_url: str | None, apply: bool, remove: bool
    ) -> list[InstallStep]:
        return admin.install(self, webhook_url, apply=apply, remove=remove)

    @hookimpl
    def itsm_change_parse_webhook(self, request: WebhookRequest) -> list[TicketEvent]:
        return webhook.parse(request, secret=request.secret or self.webhook_secret,
                             now=self.now())

