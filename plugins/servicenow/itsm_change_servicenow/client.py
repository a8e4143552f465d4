"""The ServiceNow platform instance: the core's platform hooks over the Table and Batch APIs."""

from __future__ import annotations

import heapq
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from itsm_change_sdk.config import Settings, http_timeout
from itsm_change_sdk.errors import ConfigurationError, NotFound, UnsupportedOperation
from itsm_change_sdk.hookspecs import hookimpl
from itsm_change_sdk.http import BudgetPacer, RetryPolicy, Transport
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

from . import admin, mapping, surveys, webhook
from .api import REQUEST_ID_HEADERS, TableAPI, error_body
from .auth import build_auth
from .mapping import CORRELATION_DISPLAY, TASK_CLOSED_COMPLETE, TASK_CLOSED_STATES
from .query import Query, UnsafeQueryValue, check_field, check_value, sn_datetime
from .settings import PLATFORM_NAME as PLATFORM
from .settings import SETTINGS
from .writes import Write, run_writes

__all__ = ["ServiceNowPlatform"]

SYS_ID_RE = re.compile(r"^[0-9a-f]{32}$")
LOOKUP_CHUNK = 100
NOTE_LOOKUP_CHUNK = 20
ANNOUNCEMENT_NS = uuid.UUID("5b0c8f7e-3d0a-4a59-9a86-5d2f4b1c7e21")
TICKET_FIELDS = (
    "sys_id", "number", "short_description", "sys_class_name", "state", "active", "opened_at",
    "sys_created_on", "resolved_at", "closed_at", "sys_updated_on", "category",
    "business_service", "assignment_group", "contact_type", "priority", "assigned_to",
    "caller_id", "requested_for", "reopen_count", "reassignment_count",
)
STANDARD_FIELDS = frozenset({
    *TICKET_FIELDS, "correlation_id", "correlation_display", "description", "due_date",
    "element", "element_id", "name", "value", "sys_created_by", "user", "group", "email",
    "user_name", "title", "summary", "from", "to", "sys_mod_count", "work_notes", "comments",
    "instance", "metric", "actual_value", "string_value", "role", "label", "inactive",
})
"""Fields ``doctor`` checks in ``sys_dictionary``; any other field is checked before use."""


class FieldGuard:
    """Refuses to query a non-standard field that ``sys_dictionary`` has not confirmed.

    ServiceNow drops a condition on an unknown field without a word, so a typo in a
    configured ``correlation_field`` would turn a lookup into "every record".
    """

    def __init__(self, api: TableAPI) -> None:
        self.api = api
        self.confirmed: set[tuple[str, str]] = set()

    def ensure(self, table: str, fields: Iterable[str]) -> None:
        for name in fields:
            column = name.split(".", 1)[0]
            if column in STANDARD_FIELDS or (table, column) in self.confirmed:
                continue
            query = Query().any_of("name", [table, "task"]).eq("element", column)
            if self.api.first("sys_dictionary", query, ("name", "element")) is None:
                raise ConfigurationError(
                    f"servicenow: the column {column!r} does not exist on {table!r} (checked in "
                    "sys_dictionary); fix the setting that names it or create the column"
                )
            self.confirmed.add((table, column))


class ServiceNowPlatform:
    """One ServiceNow instance."""

    name = PLATFORM

    def __init__(
        self,
        instance_url: str,
        transport: Transport,
        *,
        task_table: str = "vtb_task",
        correlation_field: str = "correlation_id",
        announcement_table: str = "announcement",
        announcement_audience_field: str | None = None,
        webhook_secret: str | None = None,
        page_size: int = 500,
        survey_answers: bool = False,
        username: str | None = None,
        auth_mode: str = "basic",
    ) -> None:
        self.instance_url = instance_url.rstrip("/")
        self.transport = transport
        self.api = TableAPI(transport, page_size)
        self.guard = FieldGuard(self.api)
        self.task_table = check_field(task_table)
        self.correlation_field = check_field(correlation_field)
        self.announcement_table = check_field(announcement_table)
        self.audience_field = (check_field(announcement_audience_field)
                               if announcement_audience_field else None)
        self.webhook_secret = webhook_secret
        self.survey_answers = survey_answers
        self.username = username
        self.auth_mode = auth_mode
        self._users: dict[str, str] = {}
        self._choices: dict[str, dict[str, str]] = {}
        """Per ticket table, its ``category`` choices: label (casefolded) -> value."""
        self._tickets: dict[str, tuple[str, str]] = {}
        """Ticket sys_id and number -> (table, sys_id), from the reads that found them."""

    def __repr__(self) -> str:
        return f"ServiceNowPlatform({self.instance_url!r}, auth={self.auth_mode!r})"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ServiceNowPlatform:
        values = settings if isinstance(settings, Settings) else Settings(PLATFORM, settings)
        typed = SETTINGS.resolve(values)
        url = str(typed["instance_url"]).rstrip("/")
        if not url.startswith("https://") and not url.startswith("http://localhost"):
            raise SETTINGS.error("instance_url", f"must start with https:// (got {url!r})")
        secrets = [values.get(k) for k in SETTINGS.secrets]
        mode = str(typed["auth"])
        policy = RetryPolicy()
        pacer = BudgetPacer(remaining_header="X-RateLimit-Remaining",
                            total_header="X-RateLimit-Limit", reset_header="X-RateLimit-Reset",
                            window=3600.0)
        timeout = http_timeout(PLATFORM, values)

        def transport(auth: Any = None) -> Transport:
            return Transport(PLATFORM, url, auth=auth, policy=policy, pacer=pacer,
                             secrets=secrets, timeout=timeout, error_parser=error_body,
                             request_id_headers=REQUEST_ID_HEADERS)

        auth = build_auth(mode, transport_factory=transport, username=values.get("username"),
                          password=values.get("password"), client_id=values.get("client_id"),
                          client_secret=values.get("client_secret"))
        survey = bool(typed["survey_answers"])
        chosen = ServiceNowSurveyPlatform if survey else cls
        return chosen(
            url, transport(auth),
            task_table=typed["task_table"],
            correlation_field=typed["correlation_field"],
            announcement_table=typed["announcement_table"],
            announcement_audience_field=typed["announcement_audience_field"],
            webhook_secret=typed["webhook_secret"],
            page_size=max(1, min(int(typed["page_size"]), 10000)),
            survey_answers=survey,
            username=values.get("username"), auth_mode=mode,
        )

    def close(self) -> None:
        self.transport.close()

    # -- plumbing -------------------------------------------------------------------------

    def rows(self, table: str, query: Query, fields: Sequence[str],
             display_value: str = "false") -> Iterator[dict[str, Any]]:
        self.guard.ensure(table, query.fields_used)
        return self.api.select(table, query, fields, display_value=display_value)

    def rows_in(self, table: str, column: str, values: Iterable[str], fields: Sequence[str],
                *, where: Callable[[], Query] = Query, order: Sequence[str] = ("sys_id",),
                size: int = LOOKUP_CHUNK) -> Iterator[dict[str, Any]]:
        """Rows whose ``column`` is one of ``values``, ``size`` values per query (``where()``
        gives the conditions every query starts with)."""
        wanted = list(values)
        for start in range(0, len(wanted), size):
            query = where().any_of(column, wanted[start:start + size]).order_by(*order)
            yield from self.rows(table, query, fields)

    def ref(self, key: str, table: str, sys_id: str, note: bool = False) -> EffectRef:
        remote = f"{table}/{sys_id}" + ("#note" if note else "")
        return EffectRef(key=key, platform=PLATFORM, remote_id=remote,
                         url=mapping.record_url(self.instance_url, table, sys_id))

    def _ref_of(self, write: Write, row: Mapping[str, Any]) -> EffectRef:
        sys_id = str(row.get("sys_id") or write.sys_id or "")
        return self.ref(write.key, write.table, sys_id, note=write.note)

    def _write(self, writes: list[Write]) -> dict[int, EffectResult]:
        for index, write in enumerate(writes):
            write.index = index
        return run_writes(self.api, writes, lookup=self._lookup_writes, ref_of=self._ref_of,
                          policy=self.transport.policy)

    def _lookup_writes(self, writes: Sequence[Write]) -> dict[str, EffectRef]:
        found: dict[str, EffectRef] = {}
        tasks = [w.key for w in writes if w.table == self.task_table and not w.note]
        notes = [w.key for w in writes if w.note]
        announcements = [w.key for w in writes if w.table == self.announcement_table]
        found.update(self._find_tasks(tasks))
        found.update(self._find_notes(notes))
        found.update(self._find_announcements(announcements))
        return found

    def _apply(self, effects: Sequence[Effect], build: Any) -> list[EffectResult]:
        """``build(effect) -> Write | EffectResult``; writes go out in batches."""
        done: dict[int, EffectResult] = {}
        writes: list[tuple[int, Write]] = []
        for position, effect in enumerate(effects):
            try:
                made = build(effect)
            except UnsafeQueryValue as exc:
                made = EffectResult(key=effect.key, ok=False, error=str(exc))
            if isinstance(made, EffectResult):
                done[position] = made
            else:
                writes.append((position, made))
        written = self._write([w for _p, w in writes]) if writes else {}
        for index, (position, _write) in enumerate(writes):
            done[position] = written[index]
        return [done[position] for position in range(len(effects))]

    # -- tasks ----------------------------------------------------------------------------

    def _task_write(self, effect: Effect, known: Mapping[str, EffectRef]) -> Write | EffectResult:
        if effect.recipient is None:
            return EffectResult(key=effect.key, ok=False, error="the effect has no recipient")
        body: dict[str, Any] = {
            "short_description": effect.title[:160],
            "description": mapping.render_task_description(effect),
            "assigned_to": effect.recipient.id,
            self.correlation_field: mapping.stored_key(effect.key),
            "correlation_display": CORRELATION_DISPLAY,
        }
        if effect.due is not None:
            body["due_date"] = f"{effect.due.isoformat()} 12:00:00"
        ref = known.get(effect.key)
        if ref is not None:
            table, sys_id = _split_remote(ref.remote_id)
            return Write(effect.key, table, "PATCH", body, sys_id=sys_id, creates=False)
        return Write(effect.key, self.task_table, "POST", body)

    def _find_tasks(self, keys: Sequence[str]) -> dict[str, EffectRef]:
        stored = {mapping.stored_key(k): k for k in keys}
        found: dict[str, EffectRef] = {}
        rows = self.rows_in(self.task_table, self.correlation_field, stored,
                            ("sys_id", self.correlation_field),
                            where=lambda: Query().eq("correlation_display", CORRELATION_DISPLAY),
                            order=("sys_created_on", "sys_id"))
        for row in rows:
            key = stored.get(str(row.get(self.correlation_field)))
            if key is not None and key not in found:
                found[key] = self.ref(key, self.task_table, str(row["sys_id"]))
        return found

    @hookimpl
    def itsm_change_publish_training(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        return self._apply(effects, lambda e: self._task_write(e, known))

    @hookimpl
    def itsm_change_training_status(self, refs: Sequence[EffectRef]) -> list[TrainingStatus]:
        out: list[TrainingStatus] = []
        for table, group in _by_table(refs).items():
            ids = {(_split_remote(r.remote_id)[1]): r for r in group}
            for row in self.rows_in(table, "sys_id", ids, ("sys_id", "state", "closed_at")):
                ref = ids[str(row["sys_id"])]
                done = str(row.get("state")) == TASK_CLOSED_COMPLETE
                out.append(TrainingStatus(
                    key=ref.key, completed=done,
                    completed_at=mapping.parse_sn_datetime(row.get("closed_at"))
                    if done else None))
        return out

    @hookimpl
    def itsm_change_retire_effects(self, refs: Sequence[EffectRef]) -> list[EffectResult]:
        results: dict[str, EffectResult] = {}
        writes: list[Write] = []
        for table, group in _by_table(refs).items():
            if table == "#note":
                for ref in group:
                    results[ref.key] = EffectResult(key=ref.key, ok=True, ref=ref)
                continue
            ids = {_split_remote(r.remote_id)[1]: r for r in group}
            announcement = table == self.announcement_table
            fields = ("sys_id", "active") if announcement else ("sys_id", "state")
            current = {str(row["sys_id"]): row
                       for row in self.rows_in(table, "sys_id", ids, fields)}
            for sys_id, ref in ids.items():
                found = current.get(sys_id)
                closed = found is None or (
                    str(found.get("active")) == "false" if announcement
                    else str(found.get("state")) in TASK_CLOSED_STATES)
                if closed:
                    results[ref.key] = EffectResult(key=ref.key, ok=True, ref=ref)
                    continue
                body = {"active": "false"} if announcement else {
                    "state": mapping.TASK_CLOSED_SKIPPED,
                    "work_notes": "Withdrawn: the change program no longer needs this."}
                writes.append(Write(ref.key, table, "PATCH", body, sys_id=sys_id,
                                    creates=False))
        written = self._write(writes) if writes else {}
        for write in writes:
            result = written[write.index]
            if not result.ok and result.error and "404" in result.error:
                result = EffectResult(key=write.key, ok=True)
            results[write.key] = result
        return [results.get(r.key) or EffectResult(key=r.key, ok=True, ref=r) for r in refs]

    # -- communication --------------------------------------------------------------------

    @hookimpl
    def itsm_change_deliver_communication(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        for effect in effects:
            if effect.channel not in ("announcement", "task", "ticket_note"):
                raise UnsupportedOperation(
                    f"servicenow has no {effect.channel!r} channel (announcement, task, "
                    "ticket_note)")
        groups = self._group_ids(
            {g for e in effects if e.channel == "announcement" for g in e.audience_groups})
        tickets = self._resolve_tickets(
            [e.ticket_id for e in effects if e.channel == "ticket_note" and e.ticket_id
             and e.key not in known])

        def build(effect: Effect) -> Write | EffectResult:
            if effect.channel == "task":
                return self._task_write(effect, known)
            if effect.channel == "ticket_note":
                return self._note_write(effect, known, tickets)
            return self._announcement_write(effect, known, groups)

        return self._apply(effects, build)

    def _announcement_write(self, effect: Effect, known: Mapping[str, EffectRef],
                            groups: Mapping[str, str]) -> Write | EffectResult:
        missing = [g for g in effect.audience_groups if g.casefold() not in groups]
        if missing:
            return EffectResult(key=effect.key, ok=False,
                                error=f"no sys_user_group named {', '.join(missing)}")
        start = effect.visible_from or utcnow()
        body: dict[str, Any] = {
            "title": effect.title[:100],
            "summary": effect.body,
            "from": sn_datetime(start),
            "active": "true",
        }
        if effect.visible_until is not None:
            body["to"] = sn_datetime(effect.visible_until)
        if self.audience_field:
            self.guard.ensure(self.announcement_table, [self.audience_field])
            body[self.audience_field] = ",".join(
                groups[g.casefold()] for g in effect.audience_groups)
        ref = known.get(effect.key)
        if ref is not None:
            table, sys_id = _split_remote(ref.remote_id)
            return Write(effect.key, table, "PATCH", body, sys_id=sys_id, creates=False)
        sys_id = announcement_sys_id(effect.key)
        return Write(effect.key, self.announcement_table, "POST", {**body, "sys_id": sys_id})

    def _find_announcements(self, keys: Sequence[str]) -> dict[str, EffectRef]:
        by_id = {announcement_sys_id(k): k for k in keys}
        found: dict[str, EffectRef] = {}
        for row in self.rows_in(self.announcement_table, "sys_id", by_id, ("sys_id",)):
            key = by_id[str(row["sys_id"])]
            found[key] = self.ref(key, self.announcement_table, str(row["sys_id"]))
        return found

    def _group_ids(self, names: set[str]) -> dict[str, str]:
        return {str(row["name"]).casefold(): str(row["sys_id"])
                for row in self.rows_in("sys_user_group", "name", sorted(names),
                                        ("sys_id", "name"))}

    # -- notes and prompts ----------------------------------------------------------------

    def _resolve_tickets(self, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Ticket number or sys_id -> (table, sys_id), via the ``task`` table."""
        wanted = {i for i in ids if i}
        out: dict[str, tuple[str, str]] = {}
        for i in wanted:
            if i.casefold() in self._tickets:
                out[i.casefold()] = self._tickets[i.casefold()]
            elif i in self._tickets:
                out[i] = self._tickets[i]
        sys_ids = sorted(i for i in wanted if SYS_ID_RE.match(i) and i not in out)
        numbers = sorted(i for i in wanted if not SYS_ID_RE.match(i) and _queryable(i)
                         and i.casefold() not in out)
        for column, values in (("sys_id", sys_ids), ("number", numbers)):
            for row in self.rows_in("task", column, values,
                                    ("sys_id", "number", "sys_class_name")):
                target = (str(row.get("sys_class_name") or "task"), str(row["sys_id"]))
                out[str(row["sys_id"])] = target
                out[str(row.get("number") or "").casefold()] = target
        return {i: out.get(i) or out[i.casefold()] for i in wanted
                if i in out or i.casefold() in out}

    def _note_write(self, effect: Effect, known: Mapping[str, EffectRef],
                    tickets: Mapping[str, tuple[str, str]]) -> Write | EffectResult:
        if effect.key in known:
            return EffectResult(key=effect.key, ok=True, ref=known[effect.key])
        if not effect.ticket_id:
            return EffectResult(key=effect.key, ok=False, error="the effect names no record")
        target = tickets.get(effect.ticket_id)
        if target is None:
            return EffectResult(key=effect.key, ok=False,
                                error=f"no task record {effect.ticket_id!r} on the instance")
        table, sys_id = target
        return Write(effect.key, table, "PATCH", {"work_notes": mapping.render_journal(effect)},
                     sys_id=sys_id, creates=True, note=True)

    def _find_notes(self, keys: Sequence[str]) -> dict[str, EffectRef]:
        """Notes by key. A note's key ends with ``:<sys_id or number>`` of its record, so the
        search is narrowed to that record's journal (``element_id`` is indexed; a ``LIKE``
        over the whole of ``sys_journal_field`` is slow on a real instance, and would also
        match a marker an agent copied into another record). Keys whose last part names no
        record are searched instance-wide."""
        records = self._resolve_tickets([_note_target(k) for k in keys])
        on_record: dict[str, list[str]] = {}
        anywhere: list[str] = []
        for key in keys:
            target = records.get(_note_target(key))
            if target is None:
                anywhere.append(key)
            else:
                on_record.setdefault(target[1], []).append(key)
        found: dict[str, EffectRef] = {}
        for sys_id, wanted in on_record.items():
            self._search_notes(wanted, found, element_id=sys_id)
        if anywhere:
            self._search_notes(anywhere, found)
        return found

    def _search_notes(self, keys: Sequence[str], found: dict[str, EffectRef],
                      element_id: str | None = None) -> None:
        markers = {mapping.marker(k): k for k in keys}
        tokens = list(markers)
        for start in range(0, len(tokens), NOTE_LOOKUP_CHUNK):
            query = Query().eq("element", "work_notes")
            if element_id is not None:
                query.eq("element_id", element_id)
            query.contains_any("value", tokens[start:start + NOTE_LOOKUP_CHUNK]).order_by(
                "sys_created_on", "sys_id")
            for row in self.rows("sys_journal_field", query,
                                 ("sys_id", "element_id", "name", "value")):
                for found_marker in mapping.markers_in(str(row.get("value") or "")):
                    key = markers.get(found_marker)
                    if key is not None and key not in found:
                        found[key] = self.ref(key, str(row.get("name") or "task"),
                                              str(row.get("element_id")), note=True)

    @hookimpl
    def itsm_change_post_prompts(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        tickets = self._resolve_tickets(
            [e.ticket_id for e in effects if e.ticket_id and e.key not in known])
        return self._apply(effects, lambda e: self._note_write(e, known, tickets))

    @hookimpl
    def itsm_change_find_effects(self, kind: EffectKind, keys: Sequence[str]) -> list[EffectRef]:
        found: dict[str, EffectRef] = {}
        if kind in (EffectKind.TRAINING, EffectKind.FEEDBACK_REQUEST, EffectKind.MESSAGE):
            found.update(self._find_tasks(keys))
        if kind in (EffectKind.PROMPT, EffectKind.MESSAGE):
            found.update(self._find_notes([k for k in keys if k not in found]))
        if kind is EffectKind.MESSAGE:
            found.update(self._find_announcements([k for k in keys if k not in found]))
        return [found[k] for k in keys if k in found]

    # -- feedback -------------------------------------------------------------------------

    @hookimpl
    def itsm_change_request_feedback(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        return self._apply(effects, lambda e: self._task_write(e, known))

    @hookimpl
    def itsm_change_find_comments(self, marker: str, since: datetime | None) -> Iterator[Comment]:
        query = Query().any_of("element", ["work_notes", "comments"]).contains_any(
            "value", [marker])
        if since is not None:
            query.gt("sys_created_on", sn_datetime(since))
        query.order_by("sys_created_on", "sys_id")
        fields = ("sys_id", "element", "element_id", "name", "value", "sys_created_on",
                  "sys_created_by")
        return self._comments(self.rows("sys_journal_field", query, fields), marker, since)

    def _comments(self, rows: Iterator[dict[str, Any]], marker: str,
                  since: datetime | None) -> Iterator[Comment]:
        seen: set[str] = set()
        page: list[dict[str, Any]] = []
        for row in rows:
            if str(row.get("sys_id")) in seen:
                continue
            seen.add(str(row.get("sys_id")))
            page.append(row)
            if len(page) >= self.api.page_size:
                yield from self._comment_page(page, marker, since)
                page = []
        yield from self._comment_page(page, marker, since)

    def _comment_page(self, page: list[dict[str, Any]], marker: str,
                      since: datetime | None) -> Iterator[Comment]:
        self._resolve_users({str(r.get("sys_created_by") or "") for r in page})
        for row in page:
            author = str(row.get("sys_created_by") or "")
            comment = mapping.comment_from_journal(row, PLATFORM, self._users.get(author, author))
            if mapping.markers_in(comment.text):
                continue  # our own note: it may quote the marker, but it is not feedback
            if marker in comment.text and (since is None or comment.created_at > since):
                yield comment

    def _resolve_users(self, user_names: set[str]) -> None:
        wanted = sorted(u for u in user_names if u and u not in self._users and _queryable(u))
        for row in self.rows_in("sys_user", "user_name", wanted, ("sys_id", "user_name")):
            self._users[str(row["user_name"])] = str(row["sys_id"])

    # -- tickets --------------------------------------------------------------------------

    def _ticket_rows(self, table: str, query: Query) -> Iterator[Ticket]:
        for row in self.rows(table, query, TICKET_FIELDS, display_value="all"):
            ticket = mapping.ticket_from_row(row, table, PLATFORM, self.instance_url)
            # What a note needs (the record's table and sys_id) came with the read: posting
            # the prompt re-reads nothing.
            target = (mapping.record_table(row, table), ticket.id)
            self._tickets[ticket.id] = target
            self._tickets[ticket.number.casefold()] = target
            yield ticket

    @hookimpl
    def itsm_change_find_tickets(
        self, filter: TicketFilter, since: datetime | None, open_only: bool
    ) -> Iterator[Ticket]:
        wanted = mapping.normalise_filter(filter)
        kinds = [k.casefold() for k in filter.kinds] or ["incident", "sc_request",
                                                         "change_request"]
        tables = list(dict.fromkeys(mapping.TICKET_TABLES[k] for k in kinds
                                    if k in mapping.TICKET_TABLES))
        if wanted.categories:
            # A category may be written as its value ("inquiry") or its label ("Inquiry /
            # Help"); the query and the check below both use the values.
            wanted = replace(wanted, categories=self.category_values(tables,
                                                                     wanted.categories))
            filter = replace(filter, categories=wanted.categories)
        conditions = (("category", wanted.categories), ("business_service.name", wanted.services),
                      ("assignment_group.name", wanted.groups), ("contact_type", wanted.channels),
                      ("priority", wanted.priorities))
        streams = []
        for table in tables:
            query = Query()
            if since is not None:
                query.gt("sys_updated_on", sn_datetime(since))
            if open_only:
                query.eq("active", "true")
            for column, values in conditions:
                if values:
                    query.any_of(column, values)
            query.order_by("sys_updated_on", "sys_id")
            streams.append(self._ticket_rows(table, query))
        merged = heapq.merge(*streams, key=lambda t: (t.updated_at, t.id))
        # The instance drops conditions on fields a table lacks, so check again here, with
        # the kinds named as tickets name them.
        check = replace(filter, priorities=wanted.priorities, platform=None, kinds=tuple(
            {mapping.KIND_OF_TABLE.get(mapping.TICKET_TABLES.get(k.casefold(), ""), k)
             for k in filter.kinds}))
        return (t for t in merged if check.matches(t))

    def category_choices(self, tables: Sequence[str]) -> dict[str, str]:
        """Label (casefolded) -> value of the ``category`` choices of ``tables``, read from
        ``sys_choice`` once per table."""
        missing = [t for t in tables if t not in self._choices]
        for table in missing:
            self._choices[table] = {}
        if missing:
            query = Query().any_of("name", missing).eq("element", "category")
            for row in self.rows("sys_choice", query, ("name", "value", "label", "inactive")):
                if str(row.get("inactive") or "false") == "true" or not row.get("value"):
                    continue
                label = str(row.get("label") or row["value"])
                self._choices.setdefault(str(row.get("name")), {})[label.casefold()] = \
                    str(row["value"])
        out: dict[str, str] = {}
        for table in tables:
            out.update(self._choices.get(table, {}))
        return out

    def category_values(self, tables: Sequence[str], categories: Sequence[str]
                        ) -> tuple[str, ...]:
        """Each category as written, plus the value of any that is a choice's label."""
        choices = self.category_choices(tables)
        values = {c.casefold(): c for c in categories}
        for category in categories:
            value = choices.get(category.casefold())
            if value is not None:
                values.setdefault(value.casefold(), value)
        return tuple(values.values())

    @hookimpl
    def itsm_change_check_filters(self, program: Program) -> list[Check]:
        return admin.check_filters(self, program)

    @hookimpl
    def itsm_change_stream_tickets(self, since: datetime | None) -> Iterator[Ticket]:
        return self.itsm_change_find_tickets(TicketFilter(), since, False)

    @hookimpl
    def itsm_change_get_ticket(self, ticket_id: str) -> Ticket | None:
        target = self._resolve_tickets([ticket_id]).get(ticket_id)
        if target is None:
            return None
        table, sys_id = target
        try:
            row = self.api.get(table, sys_id, TICKET_FIELDS, display_value="all")
        except NotFound:
            return None
        return mapping.ticket_from_row(row, table, PLATFORM, self.instance_url)

    # -- directory ------------------------------------------------------------------------

    @hookimpl
    def itsm_change_unit_members(self, unit: Unit) -> list[Person]:
        people: dict[str, Person] = {}
        if unit.group:
            group_id = self._group_ids({unit.group}).get(unit.group.casefold())
            if group_id is None and SYS_ID_RE.match(unit.group):
                group_id = unit.group
            if group_id is None:
                raise ConfigurationError(
                    f"servicenow: unit {unit.id!r} names the group {unit.group!r}, but no "
                    "sys_user_group has that name")
            query = (Query().eq("group", group_id).eq("user.active", "true")
                     .order_by("sys_id"))
            for row in self.rows("sys_user_grmember", query,
                                 ("sys_id", "user", "user.name", "user.email")):
                user = str(row.get("user") or "")
                if user:
                    people[user] = Person(id=user, name=str(row.get("user.name") or user),
                                          platform=PLATFORM,
                                          email=row.get("user.email") or None)
        explicit = [m for m in unit.members if m not in people]
        for row in self.rows_in("sys_user", "sys_id", explicit, ("sys_id", "name", "email"),
                                where=lambda: Query().eq("active", "true")):
            people[str(row["sys_id"])] = Person(
                id=str(row["sys_id"]), name=str(row.get("name") or row["sys_id"]),
                platform=PLATFORM, email=row.get("email") or None)
        return list(people.values())

    # -- admin and events -----------------------------------------------------------------

    @hookimpl
    def itsm_change_doctor(self) -> list[Check]:
        return admin.doctor(self)

    @hookimpl
    def itsm_change_install(
        self, webhook_url: str | None, apply: bool, remove: bool
    ) -> list[InstallStep]:
        return admin.install(self, webhook_url, apply, remove)

    @hookimpl
    def itsm_change_parse_webhook(self, request: WebhookRequest) -> list[TicketEvent]:
        return webhook.parse(request, request.secret or self.webhook_secret)


class ServiceNowSurveyPlatform(ServiceNowPlatform):
    """An instance whose survey answers (``asmt_metric_result``) are collected too."""

    @hookimpl
    def itsm_change_collect_survey_answers(
        self, program: Program, since: datetime | None
    ) -> Iterator[FeedbackResponse]:
        return surveys.collect(self, program, since)


def announcement_sys_id(key: str) -> str:
    """The announcement's sys_id, derived from its key, so that it can be found again."""
    return uuid.uuid5(ANNOUNCEMENT_NS, key).hex


def _split_remote(remote_id: str) -> tuple[str, str]:
    table, _, rest = remote_id.partition("/")
    return table, rest.split("#", 1)[0]


def _queryable(value: str) -> bool:
    """Whether an outside value (a ticket number, a user name) can go into a query; one that
    cannot names no record, so it is simply not found."""
    try:
        check_value(value)
    except UnsafeQueryValue:
        return False
    return True


def _note_target(key: str) -> str:
    """The record a note's key names: its last ``:`` part (a sys_id or a number)."""
    return key.rsplit(":", 1)[-1] if ":" in key else ""


def _by_table(refs: Sequence[EffectRef]) -> dict[str, list[EffectRef]]:
    out: dict[str, list[EffectRef]] = {}
    for ref in refs:
        table = "#note" if ref.remote_id.endswith("#note") else _split_remote(ref.remote_id)[0]
        out.setdefault(table, []).append(ref)
    return out
