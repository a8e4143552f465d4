"""The platform's read hooks: comments, survey answers, tickets and unit members."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from itsm_change_sdk.errors import ConfigurationError, NotFound
from itsm_change_sdk.hookspecs import hookimpl
from itsm_change_sdk.model import (
    Comment,
    EffectKind,
    FeedbackResponse,
    Person,
    Program,
    Ticket,
    TicketFilter,
    Unit,
)

from . import adf, mapping
from . import query as jql
from .api import JiraAPI
from .settings import JiraConfig

__all__ = ["JiraReads"]


class JiraReads:
    """Mixed into :class:`~itsm_change_jira.client.JiraPlatform`."""

    api: JiraAPI
    config: JiraConfig
    clock: Callable[[], datetime]
    _issues: dict[str, tuple[str, str, bool]]

    def zone(self) -> tzinfo:
        raise NotImplementedError

    def _project_jql(self, projects: Sequence[str] | None = None) -> str:
        return jql.in_("project", projects or self.config.search_projects)

    def _since_clause(self, since: datetime | None) -> str | None:
        if since is None:
            return None
        return f"updated >= {jql.date_literal(since, self.zone())}"

    @hookimpl
    def itsm_change_find_comments(self, marker: str, since: datetime | None
                                  ) -> Iterator[Comment]:
        words = "".join(ch if ch.isalnum() else " " for ch in marker).strip()
        clauses = [self._project_jql(), self._since_clause(since)]
        if words:
            clauses.append(jql.text_contains("comment", marker))
        query = f"{jql.and_(*clauses)} ORDER BY updated ASC"
        return self._marked_comments(query, marker, since)

    def _marked_comments(self, query: str, marker: str, since: datetime | None
                         ) -> Iterator[Comment]:
        for issue in self.api.search(query, ["key"]):
            issue_id = str(issue["id"])
            for raw in self.api.comments(str(issue.get("key") or issue_id)):
                comment = mapping.comment_from_payload(raw, issue_id)
                if mapping.written_by_us(comment.text):
                    continue
                if marker in comment.text and (since is None or comment.created_at > since):
                    yield comment

    @hookimpl
    def itsm_change_collect_survey_answers(
        self, program: Program, since: datetime | None
    ) -> Iterator[FeedbackResponse]:
        """JSM CSAT on the feedback requests (experimental API); nothing without JSM."""
        if not self.config.service_desk_id:
            return iter(())
        query = jql.and_(jql.in_("project", [self.config.project]),
                         jql.in_("labels", [mapping.KIND_LABELS[EffectKind.FEEDBACK_REQUEST]]),
                         self._since_clause(since))
        return self._csat(f"{query} ORDER BY updated ASC", program)

    def _csat(self, query: str, program: Program) -> Iterator[FeedbackResponse]:
        for issue in self.api.search(query, ["reporter", "updated"]):
            key = str(issue.get("key") or issue["id"])
            try:
                feedback = self.api.request_feedback(key)
            except NotFound:
                continue
            if not feedback or feedback.get("rating") is None:
                continue
            fields = issue.get("fields") or {}
            reporter = (fields.get("reporter") or {}).get("accountId") or ""
            yield FeedbackResponse(
                id=f"csat:{issue['id']}", platform="jira", program=program.id,
                person=str(reporter),
                submitted_at=mapping.parse_time(fields.get("updated")) or self.clock(),
                scores={"csat": int(feedback["rating"])},
                text=adf.to_plain_text((feedback.get("comment") or {}).get("body")),
                source="survey", ticket_id=str(issue["id"]),
            )

    def _ticket_fields(self) -> list[str]:
        extra = (self.config.channel_field, self.config.group_field)
        return [*mapping.TICKET_FIELDS, *(f for f in extra if f)]

    def _ticket(self, issue: Mapping[str, Any]) -> Ticket:
        project = (issue.get("fields") or {}).get("project") or {}
        if "projectTypeKey" in project:
            # What a note needs to know (the issue's id, key and whether it is a JSM
            # request) came with the search: posting the prompt re-reads nothing.
            resolved = (str(issue["id"]), str(issue.get("key") or issue["id"]),
                        project["projectTypeKey"] == "service_desk")
            for name in resolved[:2]:
                self._issues[name] = resolved
        return mapping.ticket_from_issue(issue, self.config.site_url, self.config.channel_field,
                                         self.config.group_field)

    def _tickets(self, query: str, since: datetime | None) -> Iterator[Ticket]:
        seen: set[tuple[str, datetime]] = set()
        for issue in self.api.search(query, self._ticket_fields()):
            ticket = self._ticket(issue)
            if since is not None and ticket.updated_at <= since:
                continue
            marker = (ticket.id, ticket.updated_at)
            if marker in seen:
                continue
            seen.add(marker)
            yield ticket

    def _ticket_projects(self) -> list[str]:
        return list(self.config.ticket_projects or (self.config.project,))

    @hookimpl
    def itsm_change_find_tickets(
        self, filter: TicketFilter, since: datetime | None, open_only: bool
    ) -> Iterator[Ticket]:
        if filter.platform and filter.platform != "jira":
            return iter(())
        clauses = [self._project_jql(self._ticket_projects()), self._since_clause(since)]
        if filter.kinds:
            clauses.append(jql.in_("issuetype", filter.kinds))
        if filter.priorities:
            clauses.append(jql.in_("priority", filter.priorities))
        if open_only:
            clauses.append("statusCategory != Done")
        query = f"{jql.and_(*clauses)} ORDER BY updated ASC, id ASC"
        return (t for t in self._tickets(query, since)
                if filter.matches(t) and (not open_only or t.is_open))

    @hookimpl
    def itsm_change_stream_tickets(self, since: datetime | None) -> Iterator[Ticket]:
        clauses = [self._project_jql(self._ticket_projects()), self._since_clause(since)]
        return self._tickets(f"{jql.and_(*clauses)} ORDER BY updated ASC, id ASC", since)

    @hookimpl
    def itsm_change_get_ticket(self, ticket_id: str) -> Ticket | None:
        try:
            issue = self.api.get_issue(ticket_id, self._ticket_fields())
        except NotFound:
            return None
        return self._ticket(issue)

    @hookimpl
    def itsm_change_unit_members(self, unit: Unit) -> list[Person]:
        people: dict[str, Person] = {}
        if unit.group:
            group_id = self._group_id(unit.group)
            for user in self.api.group_members(group_id):
                if user.get("active", True) and user.get("accountType", "atlassian") == "atlassian":
                    person = mapping.person_from_user(user)
                    people[person.id] = person
        extra = [m for m in unit.members if m not in people]
        for user in self.api.users(extra):
            if user.get("active", True):
                person = mapping.person_from_user(user)
                people[person.id] = person
        return list(people.values())

    def _group_id(self, name: str) -> str:
        for group in self.api.find_groups(name):
            if str(group.get("name", "")).casefold() == name.casefold() and group.get("groupId"):
                return str(group["groupId"])
        raise ConfigurationError(
            f"jira: no group named {name!r} is visible to this account; check the unit's "
            "group name in the program (Jira group names, not ids)"
        )

