"""Many writes in few calls (Batch API), none of them applied twice.

A create (a task insert, an announcement insert, a work note: a PATCH that appends a journal
entry is not idempotent either) that failed uncertainly, or came back unserviced, is looked up
by its correlation key before it is sent again. Updates in place are idempotent and are
simply re-sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from itsm_change_sdk.errors import APIError, AuthenticationError, PermissionDenied
from itsm_change_sdk.http import RetryPolicy, is_uncertain
from itsm_change_sdk.model import EffectRef, EffectResult

from .api import BatchItem, BatchOutcome, TableAPI

__all__ = ["BATCH_SIZE", "Write", "run_writes"]

log = logging.getLogger(__name__)

BATCH_SIZE = 100
"""Sub-requests per Batch API call. The Batch API documents no count limit, only sizes (5 MB
a request item, 10 MB a response item) and the 30 s "REST Batch API request timeout" quota;
100 journal or record writes finish well inside it, and one call carries a whole batch of
the runner's (100). Items a cancelled transaction left unserviced are looked up and sent
again."""


@dataclass
class Write:
    key: str
    table: str
    method: str
    body: Mapping[str, Any]
    sys_id: str | None = None
    creates: bool = True
    """Sending it twice would write twice (inserts, journal appends)."""
    note: bool = False
    """A journal entry: the ref names the record it was written on."""
    fields: tuple[str, ...] = ("sys_id", "number")
    index: int = 0


Lookup = Callable[[Sequence[Write]], Mapping[str, EffectRef]]
RefOf = Callable[[Write, Mapping[str, Any]], EffectRef]


def _failed(key: str, error: str, *, uncertain: bool = False,
            retryable: bool = False) -> EffectResult:
    return EffectResult(key=key, ok=False, error=error, uncertain=uncertain,
                        retryable=retryable or uncertain)


def run_writes(
    api: TableAPI,
    writes: Sequence[Write],
    *,
    lookup: Lookup,
    ref_of: RefOf,
    policy: RetryPolicy,
    batch_size: int = BATCH_SIZE,
) -> dict[int, EffectResult]:
    """Send ``writes`` through the Batch API; one result per write index."""
    results: dict[int, EffectResult] = {}
    for start in range(0, len(writes), batch_size):
        _run_chunk(api, list(writes[start:start + batch_size]), results, lookup, ref_of,
                   policy)
    return results


def _item(write: Write, position: int) -> BatchItem:
    return BatchItem(
        id=str(position),
        method=write.method,
        url=TableAPI.item_url(write.table, write.fields, write.sys_id),
        body=write.body,
    )


def _resolve_by_lookup(
    todo: list[Write], results: dict[int, EffectResult], lookup: Lookup, policy: RetryPolicy
) -> list[Write]:
    """Record the writes the platform already has; return those still to send."""
    creates = [w for w in todo if w.creates]
    found = policy.call(lambda: lookup(creates)) if creates else {}
    left = []
    for write in todo:
        ref = found.get(write.key) if write.creates else None
        if ref is not None:
            results[write.index] = EffectResult(key=write.key, ok=True, ref=ref)
        else:
            left.append(write)
    return left


def _run_chunk(
    api: TableAPI,
    todo: list[Write],
    results: dict[int, EffectResult],
    lookup: Lookup,
    ref_of: RefOf,
    policy: RetryPolicy,
) -> None:
    for attempt in range(1, policy.attempts + 1):
        if not todo:
            return
        try:
            outcomes, _unserviced = api.batch([_item(w, i) for i, w in enumerate(todo)])
        except (AuthenticationError, PermissionDenied):
            raise
        except APIError as exc:
            if not is_uncertain(exc):
                for write in todo:
                    results[write.index] = _failed(write.key, str(exc),
                                                   retryable=exc.retryable)
                return
            log.warning("batch outcome unknown (%s); looking the keys up before re-sending",
                        exc)
            todo = _resolve_by_lookup(todo, results, lookup, policy)
            policy.sleep(min(policy.max_wait, policy.initial_wait * 2**attempt))
            continue
        by_id: dict[str, BatchOutcome] = {o.id: o for o in outcomes}
        missing: list[Write] = []
        for position, write in enumerate(todo):
            outcome = by_id.get(str(position))
            if outcome is None:
                missing.append(write)
            elif outcome.ok:
                result = outcome.body.get("result") if isinstance(outcome.body, dict) else None
                row = result if isinstance(result, dict) else {}
                results[write.index] = EffectResult(key=write.key, ok=True,
                                                    ref=ref_of(write, row))
            else:
                status = outcome.status_code
                uncertain = write.creates and status >= 500
                results[write.index] = _failed(
                    write.key, outcome.error_message(), uncertain=uncertain,
                    retryable=status in (429, 502, 503, 504),
                )
        # Unserviced items were not run (the docs say so), but a cancelled transaction is
        # exactly the uncertain case: look the creates up before sending them again.
        todo = _resolve_by_lookup(missing, results, lookup, policy) if missing else []
    for write in todo:
        results[write.index] = _failed(
            write.key, f"not serviced by the Batch API after {policy.attempts} tries",
            uncertain=write.creates, retryable=True,
        )
