"""Thin endpoint layer over Jira Cloud REST v3, the JSM API and admin webhooks.

One method per endpoint; list endpoints are lazy generators in Jira's own paging styles
(``nextPageToken`` for search, ``startAt``/``isLast`` elsewhere). The legacy
``/rest/api/3/search`` is removed (410) and never called.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import requests

from itsm_change_sdk.errors import AuthenticationError
from itsm_change_sdk.http import (
    Transport,
    default_error_parser,
    paginate_offset,
    paginate_token,
)

from .auth import OAuthTokens

__all__ = ["BULK_LIMIT", "REQUEST_ID_HEADERS", "JiraAPI", "error_body"]

REQUEST_ID_HEADERS = ("X-Arequestid",)
"""Atlassian's request id, which its support asks for."""

BULK_LIMIT = 50
BULK_FETCH_LIMIT = 100
SEARCH_PAGE = 100
COMMENT_PAGE = 100
GROUP_PAGE = 50


class JiraAPI:
    """Endpoint calls for one site. ``tokens`` enables one refresh after a refused token."""

    def __init__(self, transport: Transport, tokens: OAuthTokens | None = None) -> None:
        self.transport = transport
        self.tokens = tokens
        self.page_size = SEARCH_PAGE

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self.transport.request(method, path, **kwargs)
        except AuthenticationError:
            if self.tokens is None:
                raise
            self.tokens.refresh()
            return self.transport.request(method, path, **kwargs)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.transport.json(self.request(method, path, **kwargs))

    # -- site and account --------------------------------------------------------------------

    def server_info(self) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", "/rest/api/3/serverInfo")
        return result

    def myself(self) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", "/rest/api/3/myself")
        return result

    def my_permissions(self, project: str, permissions: Sequence[str]) -> dict[str, Any]:
        result: dict[str, Any] = self.json(
            "GET", "/rest/api/3/mypermissions",
            params={"projectKey": project, "permissions": ",".join(permissions)},
        )
        return result

    # -- issues ------------------------------------------------------------------------------

    def search(self, jql: str, fields: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Issues for ``jql`` via ``POST /rest/api/3/search/jql``, page by page."""

        def fetch(token: str | None) -> tuple[list[dict[str, Any]], str | None]:
            body: dict[str, Any] = {"jql": jql, "fields": list(fields),
                                    "maxResults": self.page_size}
            if token:
                body["nextPageToken"] = token
            page = self.json("POST", "/rest/api/3/search/jql", json=body, idempotent=True)
            issues = list(page.get("issues") or [])
            next_token = None if page.get("isLast") else page.get("nextPageToken")
            return issues, next_token

        return paginate_token(fetch)

    def project(self, key: str) -> dict[str, Any]:
        """``GET /rest/api/3/project/{key}``: its issue types and components among the rest."""
        result: dict[str, Any] = self.json("GET", f"/rest/api/3/project/{key}")
        return result

    def get_issue(self, key: str, fields: Sequence[str]) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", f"/rest/api/3/issue/{key}",
                                           params={"fields": ",".join(fields)})
        return result

    def bulk_fetch(self, ids: Sequence[str], fields: Sequence[str]
                   ) -> Iterator[dict[str, Any]]:
        """``POST /rest/api/3/issue/bulkfetch``, at most 100 ids or keys a request."""
        for start in range(0, len(ids), BULK_FETCH_LIMIT):
            body = self.json("POST", "/rest/api/3/issue/bulkfetch", json={
                "issueIdsOrKeys": list(ids[start:start + BULK_FETCH_LIMIT]),
                "fields": list(fields),
            }, idempotent=True)
            yield from body.get("issues") or []

    def create_issues(self, payloads: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``POST /rest/api/3/issue/bulk`` (at most 50), sent once."""
        if len(payloads) > BULK_LIMIT:
            raise ValueError(f"at most {BULK_LIMIT} issues per bulk create")
        result: dict[str, Any] = self.json(
            "POST", "/rest/api/3/issue/bulk", json={"issueUpdates": list(payloads)},
            retry=False,
        )
        return result

    def edit_issue(self, key: str, payload: Mapping[str, Any]) -> None:
        self.request("PUT", f"/rest/api/3/issue/{key}", json=payload,
                     params={"notifyUsers": "false"})

    def transitions(self, key: str) -> list[dict[str, Any]]:
        body = self.json("GET", f"/rest/api/3/issue/{key}/transitions")
        return list(body.get("transitions") or [])

    def transition(self, key: str, transition_id: str) -> None:
        self.request("POST", f"/rest/api/3/issue/{key}/transitions",
                     json={"transition": {"id": transition_id}})

    # -- comments ----------------------------------------------------------------------------

    def comments(self, key: str) -> Iterator[dict[str, Any]]:
        def fetch(start: int) -> tuple[list[dict[str, Any]], bool]:
            page = self.json(
                "GET", f"/rest/api/3/issue/{key}/comment",
                params={"startAt": start, "maxResults": COMMENT_PAGE, "orderBy": "created",
                        "expand": "properties"},
            )
            items = list(page.get("comments") or [])
            total = page.get("total")
            return items, isinstance(total, int) and start + len(items) >= total

        return paginate_offset(fetch)

    def add_comment(self, key: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.json("POST", f"/rest/api/3/issue/{key}/comment",
                                           json=payload, retry=False)
        return result

    def update_comment(self, key: str, comment_id: str, payload: Mapping[str, Any]) -> None:
        self.request("PUT", f"/rest/api/3/issue/{key}/comment/{comment_id}", json=payload,
                     params={"notifyUsers": "false"})

    def set_comment_property(self, comment_id: str, name: str, value: Any) -> None:
        self.request("PUT", f"/rest/api/3/comment/{comment_id}/properties/{name}", json=value)

    def request_feedback(self, key: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.json(
            "GET", f"/rest/servicedeskapi/request/{key}/feedback",
            headers={"X-ExperimentalApi": "opt-in"},
        )
        return result

    # -- people ------------------------------------------------------------------------------

    def find_groups(self, query: str) -> list[dict[str, Any]]:
        body = self.json("GET", "/rest/api/3/groups/picker",
                         params={"query": query, "maxResults": 50})
        return list(body.get("groups") or [])

    def group_members(self, group_id: str) -> Iterator[dict[str, Any]]:
        def fetch(start: int) -> tuple[list[dict[str, Any]], bool]:
            page = self.json(
                "GET", "/rest/api/3/group/member",
                params={"groupId": group_id, "includeInactiveUsers": "false",
                        "startAt": start, "maxResults": GROUP_PAGE},
            )
            return list(page.get("values") or []), bool(page.get("isLast", True))

        return paginate_offset(fetch)

    def users(self, account_ids: Sequence[str]) -> Iterator[dict[str, Any]]:
        for offset in range(0, len(account_ids), GROUP_PAGE):
            chunk = account_ids[offset:offset + GROUP_PAGE]
            params: list[tuple[str, Any]] = [("accountId", a) for a in chunk]
            params.append(("maxResults", GROUP_PAGE))
            page = self.json("GET", "/rest/api/3/user/bulk", params=params)
            yield from page.get("values") or []

    # -- admin webhooks (not in the v3 spec: /rest/webhooks/1.0) -------------------------------

    def webhooks(self) -> list[dict[str, Any]]:
        body = self.json("GET", "/rest/webhooks/1.0/webhook")
        return list(body or [])

    def create_webhook(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.json("POST", "/rest/webhooks/1.0/webhook", json=payload,
                                           retry=False)
        return result

    def delete_webhook(self, webhook_id: str) -> None:
        self.request("DELETE", f"/rest/webhooks/1.0/webhook/{webhook_id}")


def error_body(response: requests.Response) -> tuple[str, list[str]]:
    """Atlassian's error collection: ``{"errorMessages": [...], "errors": {field: text}}``;
    the first message is the message, the rest are details."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        return default_error_parser(response)
    details: list[str] = []
    messages = body.get("errorMessages")
    if isinstance(messages, list):
        details.extend(str(m) for m in messages)
    errors = body.get("errors")
    if isinstance(errors, Mapping):
        details.extend(f"{field}: {text}" for field, text in errors.items())
    if not details:
        return default_error_parser(response)
    return details[0], details[1:]
