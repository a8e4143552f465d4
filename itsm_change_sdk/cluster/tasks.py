"""The cluster's tasks. Each is safe to run twice: it claims in the ledger before it writes,
and a claim someone else holds, or a key someone already wrote, makes it do nothing.

* ``process_event``: one webhook event (prompts, feedback, completions).
* ``tick``: once per tick across the cluster; plans the program's writes and polls.
* ``apply_plan``: plans, then splits the writes into batches by platform and kind.
* ``apply_batch``: one batch: claim, write, record (as ``apply`` does in one process).
* ``sync_part``: one part (training, feedback, prompts) of polling one platform.
* ``sweep_events``: re-enqueues events whose task was lost or whose retry is due.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import shared_task

from ..errors import ITSMError
from ..runner import Runner, batches
from ..service.processor import Processor
from ..sync import Syncer, SyncReport
from .claims import claim_event, current_rows, waiting_events
from .codec import action_from_dict, action_to_dict
from .context import context

__all__ = ["SYNC_PARTS", "apply_batch", "apply_plan", "process_event", "sweep_events",
           "sync_part", "tick"]

log = logging.getLogger(__name__)


def _task(name: str) -> Callable[[Callable[..., Any]], Any]:
    """A Celery task by a fixed name (the queue carries the name, not the module path)."""
    decorator: Callable[[Callable[..., Any]], Any] = shared_task(name=name)
    return decorator


SYNC_PARTS = ("training", "feedback", "prompts")
SWEEP_AFTER = timedelta(seconds=30)
"""An event still waiting this long after it arrived has lost its task (or is due a retry)."""


def _processor(program_id: str) -> Processor:
    ctx = context()
    return Processor(ctx.program(program_id), ctx.ws.platforms, ctx.ws.ledger, ctx.ws.clock)


@_task("itsm_change.process_event")
def process_event(program_id: str, platform: str, event_id: str) -> bool:
    """Process one recorded event; False when it was processed already or is held by a live
    worker (a duplicate delivery)."""
    processor = _processor(program_id)
    ledger = processor.ledger
    row = claim_event(ledger, program_id, platform, event_id, processor.clock())
    if row is None:
        return False
    if processor.process(row):
        ledger.finish_events([row.id], processor.clock())
        return True
    return False


@_task("itsm_change.tick")
def tick(program_id: str) -> None:
    ctx = context()
    program = ctx.program(program_id)
    apply_plan.delay(program_id)
    for platform in ctx.polled(program):
        for part in SYNC_PARTS:
            sync_part.delay(program_id, platform, part)
    sweep_events.delay(program_id)


@_task("itsm_change.apply_plan")
def apply_plan(program_id: str) -> int:
    """Plan and enqueue the writes, a batch per task; the number of batches."""
    ctx = context()
    runner = Runner(ctx.program(program_id), ctx.ws.platforms, ctx.ws.ledger, ctx.ws.clock)
    plan = runner.plan()
    ctx.ws.ledger.record_skipped_many([(a.effect, a.detail) for a in plan.actions
                                       if a.action == "skip" and a.effect is not None],
                                      runner.clock())
    actions = [a for a in plan.actions if a.action in ("create", "update", "retire")]
    count = 0
    for batch in batches(actions):
        apply_batch.delay(program_id, [action_to_dict(a) for a in batch])
        count += 1
    if count:
        log.info("%s: %d writes in %d batches", program_id, len(actions), count)
    return count


@_task("itsm_change.apply_batch")
def apply_batch(program_id: str, items: list[dict[str, Any]]) -> int:
    """Write one batch; the number of effects written.

    Each key is taken as the ledger has it now: one somebody wrote since the plan is left
    alone, and one still ``pending`` (its writer died) is looked up on the platform before
    anything is sent, so a batch delivered twice writes each effect once."""
    ctx = context()
    ledger = ctx.ws.ledger
    runner = Runner(ctx.program(program_id), ctx.ws.platforms, ledger, ctx.ws.clock)
    decoded = [action_from_dict(item) for item in items]
    rows = current_rows(ledger, [action.key for action, _seen in decoded])
    if any(row.state == "pending" for row in rows.values()):
        ledger.release_dead_owners(runner.clock())
        rows = current_rows(ledger, list(rows))
    actions = []
    for action, seen in decoded:
        row = rows.get(action.key)
        if row is None:
            if seen is not None:
                continue  # gone from the ledger since the plan: the next plan decides
        elif row.state != "pending" and (
                seen is None or (row.state, row.fingerprint) !=
                (seen["state"], seen["fingerprint"])):
            continue  # written since the plan
        actions.append(dataclasses.replace(action, row=row))
    if not actions:
        return 0
    runner.recover(actions)
    if not actions:
        return 0
    outcome = runner.run_batch(actions)
    failed = [(key, error) for key, _done, error in outcome if error]
    for key, error in failed[:5]:
        log.error("%s: %s", key, error)
    return len(outcome) - len(failed)


@_task("itsm_change.sync_part")
def sync_part(program_id: str, platform: str, part: str) -> None:
    ctx = context()
    program = dataclasses.replace(ctx.program(program_id), platforms=(platform,))
    syncer = Syncer(program, ctx.ws.platforms, ctx.ws.ledger, ctx.ws.clock)
    report = SyncReport()
    steps = {"training": [syncer.sync_training], "feedback": [syncer.sync_feedback],
             "prompts": [syncer.recover_prompts, syncer.sweep_prompts]}[part]
    for step in steps:
        try:
            step(report)
        except ITSMError as exc:
            log.error("%s %s %s: %s", program_id, platform, part, exc)


@_task("itsm_change.sweep_events")
def sweep_events(program_id: str) -> int:
    ctx = context()
    waiting = waiting_events(ctx.ws.ledger, program_id, ctx.ws.clock(), SWEEP_AFTER)
    for platform, event_id in waiting:
        process_event.delay(program_id, platform, event_id)
    return len(waiting)
