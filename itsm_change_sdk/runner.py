"""Carrying a plan out through the platform hooks, with the ledger as the record.

For every batch of writes: the intents are claimed in the ledger (one commit), the hook is
called, the results are recorded (one commit). A key left ``pending`` by an earlier run is
looked up on its platform first (``itsm_change_find_effects``): found means the write
happened; absent means it is sent now. So a process killed at any moment, run again,
leaves every effect exactly once.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from .errors import APIError, ITSMError
from .http.retry import is_uncertain
from .ledger import Ledger, LedgerError, PlanRow
from .model import Effect, EffectKind, EffectRef, EffectResult, Person, Program
from .planner import Plan, PlannedAction, plan
from .plugins import Platforms

if TYPE_CHECKING:
    from .report.build import Report

__all__ = ["WRITE_HOOKS", "ApplyReport", "Runner"]

log = logging.getLogger(__name__)

WRITE_HOOKS: dict[EffectKind, str] = {
    EffectKind.TRAINING: "itsm_change_publish_training",
    EffectKind.MESSAGE: "itsm_change_deliver_communication",
    EffectKind.FEEDBACK_REQUEST: "itsm_change_request_feedback",
    EffectKind.PROMPT: "itsm_change_post_prompts",
}
BATCH = 100


@dataclass
class ApplyReport:
    created: int = 0
    updated: int = 0
    retired: int = 0
    skipped: int = 0
    recovered: int = 0
    """Writes of an earlier, interrupted run found on the platform and recorded."""
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = (f"{self.created} created, {self.updated} updated, {self.retired} retired, "
                f"{self.skipped} skipped, {self.recovered} recovered, {self.unchanged} unchanged")
        if self.failed:
            text += f", {len(self.failed)} failed"
        return text


class Runner:
    """Plans and applies one program.

    :param concurrency: how many batches may be in flight at once (across platforms).
    """

    def __init__(self, program: Program, platforms: Platforms, ledger: Ledger,
                 clock: Callable[[], datetime], concurrency: int = 4) -> None:
        self.program = program
        self.platforms = platforms
        self.ledger = ledger
        self.clock = clock
        self.concurrency = max(1, concurrency)
        self._stopped = threading.Event()

    # -- planning ----------------------------------------------------------------------

    def members(self) -> dict[str, list[Person]]:
        """Each started unit's members, asked of its platform."""
        now = self.clock()
        out: dict[str, list[Person]] = {}
        for unit in self.program.units:
            if not self.program.wave_started(unit, now):
                continue
            out[unit.id] = list(self.platforms.call(unit.platform, "itsm_change_unit_members",
                                                    unit=unit) or [])
        return out

    def plan(self) -> Plan:
        rows = self.ledger.plan_rows(self.program.id)
        return plan(self.program, self.members(), rows, self.clock(), self.platforms.channels,
                    measures=self.measures)

    def measures(self) -> Report:
        """The report's numbers now, for check-in briefs and quoted results."""
        from .plugins import metric_registry
        from .report.build import build_report, program_tickets

        now = self.clock()
        return build_report(self.program, self.ledger,
                            program_tickets(self.platforms, self.program),
                            metric_registry(self.platforms.pm).kinds, now=now, as_of=now)

    # -- applying ----------------------------------------------------------------------

    def apply(self, plan: Plan | None = None, dry_run: bool = False,
              progress: Callable[[int], None] | None = None) -> ApplyReport:
        plan = plan or self.plan()
        report = ApplyReport(unchanged=plan.unchanged)
        if dry_run:
            return report
        now = self.clock()
        self.ledger.release_dead_owners(now)
        report.skipped += self.ledger.record_skipped_many(
            [(a.effect, a.detail) for a in plan.actions
             if a.action == "skip" and a.effect is not None], now)
        actions = [a for a in plan.actions if a.action in ("create", "update", "retire")]
        report.recovered += self.recover(actions)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for outcome in pool.map(self.run_batch, batches(actions)):
                for key, done, error in outcome:
                    if error is not None:
                        report.failed.append((key, error))
                    elif done == "create":
                        report.created += 1
                    elif done == "update":
                        report.updated += 1
                    elif done == "retire":
                        report.retired += 1
                if progress is not None:
                    progress(len(outcome))
        return report

    def recover(self, actions: list[PlannedAction]) -> int:
        """Look up the keys an interrupted run left pending; the ones found are recorded and
        dropped from ``actions``. Returns how many were found."""
        pending = [a for a in actions if a.row is not None and a.row.state == "pending"]
        found_keys: set[str] = set()
        for chunk in batches(pending):
            keys = [a.key for a in chunk]
            target = chunk[0].platform
            if self._self_delivered(target):
                refs = self.platforms.channel(target).find_effects(keys)
            else:
                refs = self.platforms.call(target, "itsm_change_find_effects",
                                           kind=EffectKind(chunk[0].kind), keys=keys) or []
            refs = [ref for ref in refs if ref.key in keys]
            self.ledger.record_found(refs, self.clock())
            found_keys.update(ref.key for ref in refs)
        actions[:] = [a for a in actions if a.key not in found_keys]
        return len(found_keys)

    def run_batch(self, actions: list[PlannedAction]) -> list[tuple[str, str, str | None]]:
        """One hook call for a batch of one platform and kind: ``(key, action, error)`` per
        item written (items another process holds are left out)."""
        if self._stopped.is_set():
            return []
        try:
            if actions[0].action == "retire":
                return self._retire(actions)
            return self.write(actions)
        except LedgerError:
            # The record cannot be kept: no batch may start after this one.
            self._stopped.set()
            raise
        except ITSMError as exc:
            # The whole call failed (credentials, permissions, configuration): every item
            # in the batch stays as it was recorded, and the error says what to fix.
            message = str(exc)
            log.error("%s", message)
            return [(a.key, a.action, message) for a in actions]

    def write(self, actions: list[PlannedAction]) -> list[tuple[str, str, str | None]]:
        """Claim, write and record one batch; a failure of the whole call is recorded and
        raised."""
        platform = actions[0].platform
        effects = [a.effect for a in actions if a.effect is not None]
        known: dict[str, EffectRef] = {}
        for action in actions:
            if action.row is not None and action.row.ref is not None:
                known[action.key] = action.row.ref
        seen = {a.key: a.row for a in actions}
        claimed = self.ledger.claim_many([(e, seen[e.key]) for e in effects], self.clock())
        if not claimed:
            return []
        hook = WRITE_HOOKS[claimed[0].kind]
        try:
            results: list[EffectResult] = self._send(platform, hook, claimed, known)
        except APIError as exc:
            uncertain = is_uncertain(exc)
            self.ledger.record_results([(effect, EffectResult(
                effect.key, False, error=str(exc), uncertain=uncertain)) for effect in claimed],
                self.clock())
            raise
        except ITSMError:
            self.ledger.release([e.key for e in claimed], self.clock())
            raise
        if len(results) != len(claimed):
            self.ledger.release([e.key for e in claimed], self.clock())
            raise ITSMError(f"platform {platform} answered {len(results)} results for "
                            f"{len(claimed)} effects ({hook}); the plugin breaks the contract")
        out: list[tuple[str, str, str | None]] = []
        by_key = {a.key: a for a in actions}
        self.ledger.record_results(list(zip(claimed, results, strict=True)), self.clock())
        for effect, result in zip(claimed, results, strict=True):
            done = by_key[effect.key].action
            out.append((effect.key, done, None if result.ok else (result.error or "failed")))
            if result.ok and effect.kind is EffectKind.MESSAGE and done == "create":
                self.platforms.pm.hook.itsm_change_communication_sent(
                    program=self.program, effect=effect)
        return out

    def _self_delivered(self, target: str) -> bool:
        """Whether ``target`` names a channel that delivers itself rather than a platform
        (its effects carry the channel's name as their platform)."""
        spec = self.platforms.channels.get(target)
        return spec is not None and not spec.delivered_by_platform

    def _send(self, target: str, hook: str, effects: list[Effect],
              known: dict[str, EffectRef]) -> list[EffectResult]:
        if self._self_delivered(target):
            return self.platforms.channel(target).deliver(effects, known)
        results: list[EffectResult] = self.platforms.call(
            target, hook, effects=effects, known=known) or []
        return results

    def _retire(self, actions: list[PlannedAction]) -> list[tuple[str, str, str | None]]:
        platform = actions[0].platform
        rows: list[PlanRow] = [a.row for a in actions if a.row is not None]
        refs = [r.ref for r in rows if r.ref is not None]
        results: list[EffectResult] = self.platforms.call(
            platform, "itsm_change_retire_effects", refs=refs) or []
        self.ledger.mark([r.key for r in results if r.ok], "retired", self.clock())
        out: list[tuple[str, str, str | None]] = []
        for result in results:
            out.append((result.key, "retire", None if result.ok else result.error))
        return out


def batches(actions: Sequence[PlannedAction]) -> Iterator[list[PlannedAction]]:
    """Actions grouped by platform and by the hook that carries them, in chunks one call
    takes."""
    grouped: dict[tuple[str, str], list[PlannedAction]] = defaultdict(list)
    for action in actions:
        hook = "retire" if action.action == "retire" else action.kind
        grouped[(action.platform, hook)].append(action)
    for items in grouped.values():
        for start in range(0, len(items), BATCH):
            yield items[start:start + BATCH]
