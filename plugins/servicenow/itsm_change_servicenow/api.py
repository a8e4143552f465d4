"""Thin endpoint layer: Table API reads and writes, offset pagination, the Batch API."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from itsm_change_sdk.errors import ResponseDecodeError
from itsm_change_sdk.http import Transport, default_error_parser, paginate_offset

from .query import Query

__all__ = ["REQUEST_ID_HEADERS", "BatchItem", "BatchOutcome", "TableAPI", "error_body"]

REQUEST_ID_HEADERS = ("X-Transaction-Id", "X-Request-Id")

TABLE = "/api/now/table"
BATCH = "/api/now/v1/batch"


@dataclass(frozen=True)
class BatchItem:
    """One sub-request of a batch: ``id`` must be unique within the batch."""

    id: str
    method: str
    url: str
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class BatchOutcome:
    id: str
    status_code: int
    body: Any
    """The decoded JSON body (``{"result": ...}`` or ``{"error": ...}``)."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    def error_message(self) -> str:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            error = self.body["error"]
            detail = f": {error['detail']}" if error.get("detail") else ""
            return f"{error.get('message') or 'failed'}{detail} (HTTP {self.status_code})"
        return f"HTTP {self.status_code}"


class TableAPI:
    """One method per endpoint; reads are lazy generators over pages."""

    def __init__(self, transport: Transport, page_size: int = 500) -> None:
        self.transport = transport
        self.page_size = page_size

    @staticmethod
    def params(
        fields: Sequence[str],
        *,
        query: Query | None = None,
        display_value: str = "false",
    ) -> dict[str, str]:
        params = {
            "sysparm_fields": ",".join(fields),
            "sysparm_exclude_reference_link": "true",
            "sysparm_display_value": display_value,
        }
        if query is not None:
            params["sysparm_query"] = query.encode()
        return params

    def select(
        self,
        table: str,
        query: Query,
        fields: Sequence[str],
        *,
        display_value: str = "false",
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Rows matching ``query``, page by page (offset, in the query's stable order).

        Follows the ``Link`` header's ``next`` where there is one (a last full page costs no
        extra empty call), else stops at a short page.
        """
        if query.empty:
            return
        page_size = min(limit, self.page_size) if limit else self.page_size
        base = self.params(fields, query=query, display_value=display_value)

        def fetch(offset: int) -> tuple[list[dict[str, Any]], bool]:
            params = {**base, "sysparm_limit": str(page_size), "sysparm_offset": str(offset)}
            response = self.transport.request("GET", f"{TABLE}/{table}", params=params)
            rows = self._rows(self.transport.json(response))
            end = offset + len(rows)
            total = response.headers.get("X-Total-Count")
            if "Link" in response.headers:
                # The instance may cap a page below sysparm_limit; its Link header knows.
                last = "next" not in response.links
            else:
                last = len(rows) < page_size
            return rows, (last or (limit is not None and end >= limit)
                          or (total is not None and total.isdigit() and end >= int(total)))

        yield from paginate_offset(fetch)

    def first(
        self, table: str, query: Query, fields: Sequence[str], *, display_value: str = "false"
    ) -> dict[str, Any] | None:
        return next(iter(self.select(table, query, fields, display_value=display_value,
                                   limit=1)), None)

    def get(
        self, table: str, sys_id: str, fields: Sequence[str], *, display_value: str = "false"
    ) -> dict[str, Any]:
        params = self.params(fields, display_value=display_value)
        body = self.transport.get_json(f"{TABLE}/{table}/{sys_id}", params=params)
        return self._record(body)

    def create(self, table: str, values: Mapping[str, Any], fields: Sequence[str],
               *, retry: bool = True) -> dict[str, Any]:
        response = self.transport.request(
            "POST", f"{TABLE}/{table}", params=self.params(fields), json=dict(values),
            retry=retry,
        )
        return self._record(self.transport.json(response))

    def update(self, table: str, sys_id: str, values: Mapping[str, Any],
               fields: Sequence[str]) -> dict[str, Any]:
        response = self.transport.request(
            "PATCH", f"{TABLE}/{table}/{sys_id}", params=self.params(fields),
            json=dict(values), idempotent=True,
        )
        return self._record(self.transport.json(response))

    def delete(self, table: str, sys_id: str) -> None:
        self.transport.request("DELETE", f"{TABLE}/{table}/{sys_id}")

    @staticmethod
    def item_url(table: str, fields: Sequence[str], sys_id: str | None = None) -> str:
        path = f"{TABLE}/{table}" + (f"/{sys_id}" if sys_id else "")
        return f"{path}?{urlencode(TableAPI.params(fields))}"

    def batch(self, items: Sequence[BatchItem]) -> tuple[list[BatchOutcome], list[str]]:
        """Send ``items`` in one Batch API call.

        :return: the serviced outcomes and the ids of the unserviced items. The call is not
            retried after it was sent (its creates are not idempotent): the caller looks the
            keys up on an uncertain failure.
        """
        payload = {
            "batch_request_id": uuid.uuid4().hex,
            "rest_requests": [
                {
                    "id": item.id,
                    "method": item.method,
                    "url": item.url,
                    "headers": [
                        {"name": "Content-Type", "value": "application/json"},
                        {"name": "Accept", "value": "application/json"},
                    ],
                    **({"body": base64.b64encode(json.dumps(item.body).encode()).decode()}
                       if item.body is not None else {}),
                    "exclude_response_headers": True,
                }
                for item in items
            ],
        }
        response = self.transport.request("POST", BATCH, json=payload)
        body = self.transport.json(response)
        if not isinstance(body, dict):
            raise self._decode_error("the Batch API answered without a JSON object")
        outcomes: list[BatchOutcome] = []
        for served in body.get("serviced_requests") or []:
            raw = served.get("body") or ""
            try:
                decoded = json.loads(base64.b64decode(raw)) if raw else None
            except ValueError:
                decoded = None
            outcomes.append(BatchOutcome(str(served.get("id")),
                                         int(served.get("status_code") or 0), decoded))
        unserviced = [str(u.get("id") if isinstance(u, dict) else u)
                      for u in body.get("unserviced_requests") or []]
        return outcomes, unserviced

    # -- shapes ---------------------------------------------------------------------------

    def _decode_error(self, message: str) -> ResponseDecodeError:
        return ResponseDecodeError(message, platform=self.transport.platform)

    def _rows(self, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("result"), list):
            raise self._decode_error("expected {\"result\": [...]} from the Table API")
        return [row for row in body["result"] if isinstance(row, dict)]

    def _record(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("result"), dict):
            raise self._decode_error("expected {\"result\": {...}} from the Table API")
        return dict(body["result"])


def error_body(response: requests.Response) -> tuple[str, list[str]]:
    """ServiceNow's error envelope: ``{"error": {"message", "detail"}, "status": "failure"}``."""
    error = _json_object(response).get("error")
    if isinstance(error, Mapping):
        details = [str(error["detail"])] if error.get("detail") else []
        if error.get("message"):
            return str(error["message"]), details
        if details:
            return details[0], []
    return default_error_parser(response)


def _json_object(response: requests.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}
