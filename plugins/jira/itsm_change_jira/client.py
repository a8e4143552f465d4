"""The Jira platform instance: the core's platform hooks on top of :mod:`.api`."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, tzinfo
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from itsm_change_sdk.config import data_dir, http_timeout
from itsm_change_sdk.errors import (
    APIError,
    ConfigurationError,
    InvalidRequest,
    NotFound,
    UnsupportedOperation,
)
from itsm_change_sdk.hookspecs import hookimpl
from itsm_change_sdk.http import KeyedLimiter, RetryPolicy, Transport, create_once, is_uncertain
from itsm_change_sdk.model import (
    Check,
    Effect,
    EffectKind,
    EffectRef,
    EffectResult,
    InstallStep,
    Program,
    TicketEvent,
    TrainingStatus,
    WebhookRequest,
)

from . import adf, admin, mapping, webhook
from . import query as jql
from .api import BULK_LIMIT, REQUEST_ID_HEADERS, JiraAPI, error_body
from .auth import API_GATEWAY, BearerAuth, OAuthTokens, TokenStore
from .reads import JiraReads
from .settings import SETTINGS, JiraConfig, _opt, _require

__all__ = ["JiraConfig", "JiraPlatform"]

COMMENT_CHANNELS = frozenset({"ticket_note", "public_comment"})
SUPPORTED_CHANNELS = frozenset({"task", "ticket_note", "public_comment", "announcement"})
_FIND_CHUNK = 50
_TOKEN_CHUNK = 20
_ISSUE_REF = re.compile(r"\d+|[A-Z][A-Z0-9_]*-\d+")


class JiraPlatform(JiraReads):
    """One Jira Cloud site, with its JSM service desk where configured."""

    write_chunk = 25
    """Notes per write call the sync hands over: one comment per request, so many small
    calls side by side keep more requests in flight than a few large ones."""

    def __init__(
        self,
        api: JiraAPI,
        config: JiraConfig,
        *,
        limiter: KeyedLimiter | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api = api
        self.config = config
        self.policy = api.transport.policy
        self.limiter = limiter or KeyedLimiter(20, 2.0)
        self.clock = clock
        self._zone: tzinfo | None = None
        self._issues: dict[str, tuple[str, str, bool]] = {}
        self._comment_targets: dict[str, str] = {}
        self.write_concurrency = max(1, config.write_concurrency)

    def __repr__(self) -> str:
        return f"JiraPlatform({self.config.site_url!r}, project={self.config.project!r})"

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, policy: RetryPolicy | None = None,
        limiter: KeyedLimiter | None = None,
    ) -> JiraPlatform:
        typed = SETTINGS.resolve(settings)
        site_url = str(typed["site_url"]).rstrip("/")
        if not site_url.startswith(("https://", "http://localhost", "http://127.0.0.1")):
            raise ConfigurationError(
                f"jira: site_url must start with https:// (got {site_url!r})"
            )
        correlation = str(typed["correlation"])
        if correlation != "label" and not correlation.startswith("customfield_"):
            raise ConfigurationError(
                "jira: correlation must be 'label' or a text custom field id like "
                f"customfield_10050 (got {correlation!r})"
            )
        if not 1 <= typed["write_concurrency"] <= 32:
            raise ConfigurationError(
                "jira: write_concurrency must be a whole number from 1 to 32 (got "
                f"{typed['write_concurrency']!r}); set ITSM_CHANGE_JIRA_WRITE_CONCURRENCY")
        config = JiraConfig(
            site_url=site_url,
            project=typed["project"],
            issue_type=typed["issue_type"],
            parent_issue=_opt(settings, "parent_issue"),
            done_transition=_opt(settings, "done_transition"),
            correlation=correlation,
            service_desk_id=_opt(settings, "service_desk_id"),
            ticket_projects=typed["ticket_projects"] or (),
            internal_role=_opt(settings, "internal_role"),
            announcement_issue=_opt(settings, "announcement_issue"),
            channel_field=_opt(settings, "channel_field"),
            group_field=_opt(settings, "group_field"),
            webhook_secret=_opt(settings, "webhook_secret"),
            webhook_name=typed["webhook_name"],
            write_concurrency=typed["write_concurrency"],
        )
        mode = typed["auth"] or ("oauth" if typed["client_id"] else "basic")
        cloud_id = _opt(settings, "cloud_id")
        secrets = [_opt(settings, k) for k in
                   ("api_token", "access_token", "refresh_token", "client_secret",
                    "webhook_secret")]
        policy = policy or RetryPolicy()
        timeout = http_timeout("jira", settings)
        tokens: OAuthTokens | None = None
        if mode == "basic":
            email = _require(settings, "email", "the Atlassian account email")
            token = _require(settings, "api_token", "the API token")
            base = f"{API_GATEWAY}/{cloud_id}" if cloud_id else site_url
            transport = Transport("jira", base, auth=(email, token), policy=policy,
                                  secrets=secrets, timeout=timeout, error_parser=error_body,
                                  request_id_headers=REQUEST_ID_HEADERS)
        elif mode == "oauth":
            cloud = _require(settings, "cloud_id", "the cloud id (from accessible-resources)")
            store = TokenStore(_opt(settings, "token_store") or str(
                data_dir() / f"jira-oauth-{cloud}.json"))
            auth_transport = Transport("jira", "https://auth.atlassian.com", policy=policy,
                                       secrets=secrets, timeout=timeout)
            tokens = OAuthTokens(
                client_id=_require(settings, "client_id", "the OAuth client id"),
                client_secret=_require(settings, "client_secret", "the OAuth client secret"),
                refresh_token=_opt(settings, "refresh_token"),
                access_token=_opt(settings, "access_token"),
                store=store,
                transport=auth_transport,
            )
            if not (_opt(settings, "refresh_token") or _opt(settings, "access_token")
                    or store.load()):
                raise ConfigurationError(
                    "jira: OAuth needs refresh_token (or access_token); set "
                    "ITSM_CHANGE_JIRA_REFRESH_TOKEN"
                )
            transport = Transport("jira", f"{API_GATEWAY}/{cloud}", auth=BearerAuth(tokens),
                                  policy=policy, secrets=[*secrets, *tokens.secrets()],
                                  timeout=timeout, error_parser=error_body,
                                  request_id_headers=REQUEST_ID_HEADERS)
        else:
            raise ConfigurationError(f"jira: auth must be 'basic' or 'oauth' (got {mode!r})")
        return cls(JiraAPI(transport, tokens), config, limiter=limiter)

    def close(self) -> None:
        self.api.transport.close()

    # -- helpers -----------------------------------------------------------------------------

    def zone(self) -> tzinfo:
        """The account's time zone: Jira reads JQL date literals in it."""
        if self._zone is None:
            name = self.api.myself().get("timeZone") or "UTC"
            try:
                self._zone = ZoneInfo(str(name))
            except (ZoneInfoNotFoundError, ValueError):
                self._zone = UTC
        return self._zone

    def _ref(self, key: str, issue: Mapping[str, Any]) -> EffectRef:
        issue_key = issue.get("key")
        url = f"{self.config.site_url}/browse/{issue_key}" if issue_key else None
        return EffectRef(key=key, platform="jira", remote_id=str(issue["id"]), url=url)

    def _comment_ref(self, key: str, issue: str, comment_id: str) -> EffectRef:
        issue_id, issue_key, _ = self._resolve(issue)
        return EffectRef(
            key=key, platform="jira", remote_id=f"{issue_id}/comment/{comment_id}",
            url=f"{self.config.site_url}/browse/{issue_key}?focusedCommentId={comment_id}",
        )

    @staticmethod
    def _failed(key: str, exc: Exception) -> EffectResult:
        uncertain = is_uncertain(exc)
        retryable = uncertain or bool(getattr(exc, "retryable", False))
        return EffectResult(key=key, ok=False, error=str(exc), uncertain=uncertain,
                            retryable=retryable)

    # -- issues as tasks ---------------------------------------------------------------------

    def _issue_payload(self, effect: Effect, issue_type: str | None = None) -> dict[str, Any]:
        fields = mapping.issue_fields(
            effect, project=self.config.project,
            issue_type=issue_type or self.config.issue_type,
            correlation=self.config.correlation, parent=self.config.parent_issue,
        )
        if (effect.kind is EffectKind.FEEDBACK_REQUEST and self.config.service_desk_id
                and effect.recipient is not None):
            fields["reporter"] = {"id": effect.recipient.id}
        return {"fields": fields, "properties": [
            {"key": mapping.PROPERTY, "value": mapping.property_value(effect)}]}

    def _update_issue(self, effect: Effect, ref: EffectRef) -> EffectResult:
        fields: dict[str, Any] = {
            "summary": effect.title[:255],
            "description": adf.from_plain_text(effect.body),
            "duedate": effect.due.isoformat() if effect.due else None,
        }
        if effect.recipient is not None:
            fields["assignee"] = {"id": effect.recipient.id}
        self.limiter.acquire(ref.remote_id)
        self.api.edit_issue(ref.remote_id, {"fields": fields})
        return EffectResult(key=effect.key, ok=True, ref=ref)

    def _publish_issues(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        results: dict[str, EffectResult] = {}
        creates: list[Effect] = []
        for effect in effects:
            ref = known.get(effect.key)
            if ref is None or "/comment/" in ref.remote_id:
                creates.append(effect)
                continue
            try:
                results[effect.key] = self._update_issue(effect, ref)
            except NotFound:
                creates.append(effect)
            except (InvalidRequest, APIError) as exc:
                if exc.status_code in (401, 403):
                    raise
                results[effect.key] = self._failed(effect.key, exc)
        for start in range(0, len(creates), BULK_LIMIT):
            results.update(self._bulk_create(creates[start:start + BULK_LIMIT]))
        return [results[e.key] for e in effects]

    def _bulk_create(self, chunk: Sequence[Effect]) -> dict[str, EffectResult]:
        """Create up to 50 issues; after an uncertain failure, look the keys up first."""
        results: dict[str, EffectResult] = {}
        pending = list(chunk)
        for attempt in range(1, self.policy.attempts + 1):
            try:
                payloads = [self._issue_payload(e) for e in pending]
                body = self.policy.call(partial(self.api.create_issues, payloads))
            except InvalidRequest as exc:
                body = self._error_body(exc)
                if not isinstance(body.get("errors"), list) or not body["errors"]:
                    for effect in pending:
                        results[effect.key] = self._failed(effect.key, exc)
                    return results
            except APIError as exc:
                if not is_uncertain(exc):
                    raise
                keys = [e.key for e in pending]
                found = self.policy.call(partial(self._find_issue_refs, keys))
                for effect in pending:
                    if effect.key in found:
                        results[effect.key] = EffectResult(effect.key, True, found[effect.key])
                pending = [e for e in pending if e.key not in found]
                if not pending:
                    return results
                if attempt == self.policy.attempts:
                    for effect in pending:
                        results[effect.key] = self._failed(effect.key, exc)
                    return results
                self.policy.sleep(min(self.policy.max_wait, self.policy.initial_wait * 2**attempt))
                continue
            results.update(self._map_bulk(pending, body))
            return results
        return results

    @staticmethod
    def _error_body(exc: APIError) -> dict[str, Any]:
        try:
            body = json.loads(exc.body) if exc.body else {}
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _map_bulk(self, pending: Sequence[Effect], body: Mapping[str, Any]
                  ) -> dict[str, EffectResult]:
        results: dict[str, EffectResult] = {}
        failed: dict[int, str] = {}
        for error in body.get("errors") or []:
            index = error.get("failedElementNumber")
            if not isinstance(index, int):
                continue
            element = error.get("elementErrors") or {}
            parts = [*element.get("errorMessages", []),
                     *(f"{k}: {v}" for k, v in (element.get("errors") or {}).items())]
            failed[index] = "; ".join(str(p) for p in parts) or f"status {error.get('status')}"
        created = iter(body.get("issues") or [])
        for index, effect in enumerate(pending):
            if index in failed:
                results[effect.key] = EffectResult(
                    effect.key, False, error=f"jira: {failed[index]}")
                continue
            issue = next(created, None)
            if issue is None:
                results[effect.key] = EffectResult(
                    effect.key, False, error="jira: bulk create returned no issue",
                    uncertain=True, retryable=True)
            else:
                results[effect.key] = EffectResult(effect.key, True, self._ref(effect.key, issue))
        return results

    def _find_issue_refs(self, keys: Sequence[str]) -> dict[str, EffectRef]:
        found: dict[str, EffectRef] = {}
        field_name = self.config.correlation
        for start in range(0, len(keys), _FIND_CHUNK):
            chunk = list(keys[start:start + _FIND_CHUNK])
            if field_name == "label":
                by_label = {mapping.key_label(k): k for k in chunk}
                clause = jql.in_("labels", by_label)
                fields = ["labels"]
            else:
                number = field_name.removeprefix("customfield_")
                clause = " OR ".join(jql.text_contains(f"cf[{number}]", k) for k in chunk)
                fields = [field_name]
            query = f"{jql.and_(jql.in_('project', [self.config.project]), clause)} ORDER BY id"
            for issue in self.api.search(query, fields):
                issue_fields = issue.get("fields") or {}
                if field_name == "label":
                    for label in issue_fields.get("labels") or []:
                        if label in by_label:
                            found[by_label[label]] = self._ref(by_label[label], issue)
                else:
                    value = issue_fields.get(field_name)
                    if value in chunk:
                        found[str(value)] = self._ref(str(value), issue)
        return found

    # -- comments ----------------------------------------------------------------------------

    def _resolve(self, issue: str) -> tuple[str, str, bool]:
        """(id, key, is a JSM request) for an issue named by id or key."""
        if issue not in self._issues:
            data = self.api.get_issue(issue, ["project"])
            project = (data.get("fields") or {}).get("project") or {}
            resolved = (str(data["id"]), str(data.get("key") or data["id"]),
                        project.get("projectTypeKey") == "service_desk")
            # Known by the name asked for, its id and its key: a note is posted by id.
            for name in (issue, *resolved[:2]):
                self._issues[name] = resolved
        return self._issues[issue]

    def _find_comment(self, key: str, issue: str) -> EffectRef | None:
        return self._find_comments_on(issue, [key]).get(key)

    def _find_comments_on(self, issue: str, keys: Sequence[str]) -> dict[str, EffectRef]:
        """The comments on ``issue`` that carry any of ``keys`` (token or property)."""
        by_token = {mapping.comment_token(k): k for k in keys}
        wanted = set(keys)
        found: dict[str, EffectRef] = {}
        for comment in self.api.comments(issue):
            text = adf.to_plain_text(comment.get("body"))
            props = {p.get("key"): p.get("value") for p in comment.get("properties") or []}
            key = (props.get(mapping.PROPERTY) or {}).get("key")
            if key not in wanted:
                key = next((k for t, k in by_token.items() if t in text), None)
            if key is not None and key not in found:
                found[key] = self._comment_ref(key, issue, str(comment["id"]))
                if len(found) == len(wanted):
                    break
        return found

    def _post_comment(self, effect: Effect, public: bool) -> EffectRef:
        """One request per note: the platform comment carries its correlation property in
        the same call. On a JSM request the ``sd.public.comment`` property says internal or
        public (JSM's own comment endpoint cannot carry properties, so it would take a
        second call to mark the comment)."""
        issue = effect.ticket_id
        assert issue
        self._comment_targets[effect.key] = issue
        issue, _, service_desk = self._resolve(issue)
        properties: list[dict[str, Any]] = [
            {"key": mapping.PROPERTY, "value": mapping.property_value(effect)}]
        if service_desk:
            properties.append({"key": mapping.JSM_VISIBILITY, "value": {"internal": not public}})
        payload: dict[str, Any] = {
            "body": adf.from_plain_text(mapping.comment_text(effect)),
            "properties": properties,
        }
        if not public and not service_desk and self.config.internal_role:
            payload["visibility"] = {"type": "role", "value": self.config.internal_role}
        self.limiter.acquire(issue)
        return self._add_comment(effect.key, issue, payload)

    def _add_comment(self, key: str, issue: str, payload: Mapping[str, Any]) -> EffectRef:
        """Post a comment once: after an uncertain failure, look for its key first."""

        def send() -> EffectRef:
            created = self.api.add_comment(issue, payload)
            return self._comment_ref(key, issue, str(created["id"]))

        return create_once(send, lambda: self._find_comment(key, issue), self.policy)

    def _edit_comment(self, ref: EffectRef, payload: Mapping[str, Any]) -> bool:
        """Update the comment ``ref`` names; False when it is not a comment or was deleted on
        the site (the caller posts it again, as for a deleted issue)."""
        if "/comment/" not in ref.remote_id:
            return False
        issue, _, comment_id = ref.remote_id.partition("/comment/")
        self.limiter.acquire(issue)
        try:
            self.api.update_comment(issue, comment_id, payload)
        except NotFound:
            return False
        return True

    def _post_comments(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef], *, skip_known: bool
    ) -> list[EffectResult]:
        """Jira has no bulk comment endpoint: the batch's comments go out side by side,
        ``write_concurrency`` at a time (each issue paced by the limiter, 429s by the
        transport)."""

        def one(effect: Effect) -> EffectResult:
            ref = known.get(effect.key)
            if ref is not None and skip_known:
                return EffectResult(effect.key, True, ref)
            if not effect.ticket_id:
                hint = ("; give the communication a record on jira (record: {jira: <issue "
                        "key>})" if effect.kind is EffectKind.MESSAGE else "")
                return EffectResult(effect.key, False, error=(
                    f"jira: {effect.channel} {effect.key!r} names no issue to comment on"
                    f"{hint}"))
            try:
                if ref is None or not self._edit_comment(
                        ref, {"body": adf.from_plain_text(mapping.comment_text(effect))}):
                    ref = self._post_comment(effect, public=effect.channel == "public_comment")
                return EffectResult(effect.key, True, ref)
            except APIError as exc:
                if exc.status_code == 401:
                    raise
                return self._failed(effect.key, exc)

        workers = min(self.write_concurrency, len(effects))
        if workers <= 1:
            return [one(e) for e in effects]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, effects))

    def _note_target(self, key: str) -> str | None:
        """The issue a note's key names: notes' keys end with ``:<issue id or key>``;
        announcements live on ``announcement_issue``."""
        target = self._comment_targets.get(key)
        if target:
            return target
        tail = key.rsplit(":", 1)[-1]
        if _ISSUE_REF.fullmatch(tail):
            return tail
        return self.config.announcement_issue

    def _find_comment_refs(self, keys: Sequence[str]) -> dict[str, EffectRef]:
        found: dict[str, EffectRef] = {}
        by_issue: dict[str, list[str]] = {}
        for key in keys:
            target = self._note_target(key)
            if target:
                by_issue.setdefault(target, []).append(key)
        for issue, issue_keys in by_issue.items():
            try:
                found.update(self._find_comments_on(issue, issue_keys))
            except NotFound:
                continue
        rest = [k for k in keys if k not in found]
        for start in range(0, len(rest), _TOKEN_CHUNK):
            chunk = rest[start:start + _TOKEN_CHUNK]
            tokens = " OR ".join(
                jql.text_contains("comment", mapping.comment_token(k)) for k in chunk)
            query = f"{jql.and_(self._project_jql(), tokens)} ORDER BY updated DESC"
            for hit in self.api.search(query, ["key"]):
                missing = [k for k in chunk if k not in found]
                if not missing:
                    break
                found.update(self._find_comments_on(str(hit["id"]), missing))
        return found

    # -- hooks: effects ----------------------------------------------------------------------

    @hookimpl
    def itsm_change_find_effects(self, kind: EffectKind, keys: Sequence[str]) -> list[EffectRef]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, EffectRef] = {}
        if kind is not EffectKind.PROMPT:
            found.update(self._find_issue_refs(keys))
        if kind in (EffectKind.PROMPT, EffectKind.MESSAGE):
            found.update(self._find_comment_refs([k for k in keys if k not in found]))
        return [found[k] for k in keys if k in found]

    @hookimpl
    def itsm_change_publish_training(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        return self._publish_issues(effects, known)

    @hookimpl
    def itsm_change_training_status(self, refs: Sequence[EffectRef]) -> list[TrainingStatus]:
        by_id = {r.remote_id: r for r in refs if "/comment/" not in r.remote_id}
        statuses: list[TrainingStatus] = []
        for issue in self.api.bulk_fetch(
                list(by_id), ["status", "resolutiondate", "statuscategorychangedate"]):
            ref = by_id.get(str(issue.get("id"))) or by_id.get(str(issue.get("key")))
            if ref is None:
                continue
            fields = issue.get("fields") or {}
            done = mapping.ticket_state(fields) != "open"
            when = mapping.parse_time(fields.get("resolutiondate")) or mapping.parse_time(
                fields.get("statuscategorychangedate"))
            statuses.append(TrainingStatus(ref.key, done, when if done else None))
        return statuses

    @hookimpl
    def itsm_change_retire_effects(self, refs: Sequence[EffectRef]) -> list[EffectResult]:
        results: list[EffectResult] = []
        for ref in refs:
            try:
                if "/comment/" in ref.remote_id:
                    _, _, comment_id = ref.remote_id.partition("/comment/")
                    self.api.set_comment_property(
                        comment_id, mapping.PROPERTY, {"key": ref.key, "retired": True})
                else:
                    self._retire_issue(ref.remote_id)
                results.append(EffectResult(ref.key, True, ref))
            except NotFound:
                results.append(EffectResult(ref.key, True, ref))
            except APIError as exc:
                if exc.status_code == 401:
                    raise
                results.append(self._failed(ref.key, exc))
        return results

    def _retire_issue(self, issue: str) -> None:
        """Label the issue retired, then move it to a done status (never delete it)."""
        self.limiter.acquire(issue)
        self.api.edit_issue(issue, {"update": {"labels": [{"add": mapping.RETIRED_LABEL}]}})
        wanted = self.config.done_transition
        options = self.api.transitions(issue)
        chosen = None
        for option in options:
            to = option.get("to") or {}
            category = (to.get("statusCategory") or {}).get("key")
            if wanted and wanted in (str(option.get("id")), option.get("name")):
                chosen = option
                break
            if not wanted and category == "done" and chosen is None:
                chosen = option
        if chosen is not None:
            self.limiter.acquire(issue)
            self.api.transition(issue, str(chosen["id"]))

    @hookimpl
    def itsm_change_deliver_communication(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        for effect in effects:
            if effect.channel not in SUPPORTED_CHANNELS:
                raise UnsupportedOperation(f"jira has no {effect.channel!r} channel")
            if effect.channel == "announcement" and not self.config.announcement_issue:
                raise UnsupportedOperation(
                    "jira has no per-group announcements; set announcement_issue to an "
                    "issue key whose comments carry announcements"
                )
        results: dict[str, EffectResult] = {}
        tasks = [e for e in effects if e.channel == "task"]
        for effect, result in zip(tasks, self._publish_issues(tasks, known), strict=True):
            results[effect.key] = result
        notes = [e for e in effects if e.channel in COMMENT_CHANNELS]
        for effect, result in zip(notes, self._post_comments(notes, known, skip_known=False),
                                  strict=True):
            results[effect.key] = result
        for effect in (e for e in effects if e.channel == "announcement"):
            results[effect.key] = self._announce(effect, known.get(effect.key))
        return [results[e.key] for e in effects]

    def _announce(self, effect: Effect, ref: EffectRef | None) -> EffectResult:
        issue = self.config.announcement_issue
        assert issue
        header = f"{effect.title}\n\n" if effect.title else ""
        audience = (f"\n\nFor: {', '.join(effect.audience_groups)}"
                    if effect.audience_groups else "")
        note = dataclasses.replace(effect, body=header + effect.body + audience,
                                   ticket_id=issue)
        payload: dict[str, Any] = {"body": adf.from_plain_text(mapping.comment_text(note))}
        if len(effect.audience_groups) == 1:
            payload["visibility"] = {"type": "group", "value": effect.audience_groups[0]}
        try:
            if ref is not None and self._edit_comment(ref, payload):
                return EffectResult(effect.key, True, ref)
            payload["properties"] = [{"key": mapping.PROPERTY,
                                      "value": mapping.property_value(effect)}]
            self._comment_targets[effect.key] = issue
            self.limiter.acquire(issue)
            return EffectResult(effect.key, True, self._add_comment(effect.key, issue, payload))
        except APIError as exc:
            if exc.status_code == 401:
                raise
            return self._failed(effect.key, exc)

    @hookimpl
    def itsm_change_request_feedback(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        return self._publish_issues(effects, known)

    @hookimpl
    def itsm_change_post_prompts(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        return self._post_comments(effects, known, skip_known=True)

    # -- hooks: admin and events -------------------------------------------------------------

    @hookimpl
    def itsm_change_doctor(self) -> list[Check]:
        return admin.doctor(self)

    @hookimpl
    def itsm_change_check_filters(self, program: Program) -> list[Check]:
        return admin.check_filters(self, program)

    @hookimpl
    def itsm_change_install(self, webhook_url: str | None, apply: bool, remove: bool
                            ) -> list[InstallStep]:
        return admin.install(self, webhook_url, apply, remove)

    @hookimpl
    def itsm_change_parse_webhook(self, request: WebhookRequest) -> list[TicketEvent]:
        return webhook.parse(request, self.config.site_url, self.config.channel_field,
                             self.config.group_field)
