"""Reading back what staff did: training completions, feedback, and prompts on new tickets.

Each step is incremental and picks up where it stopped (cursors in the ledger). The event
service calls the same functions for one event at a time; ``itsm-change sync`` calls them
by polling, for platforms whose webhooks cannot reach us.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from .errors import ITSMError
from .feedback import parse_feedback
from .ledger import EffectRow, Ledger
from .model import (
    Comment,
    Effect,
    EffectKind,
    EffectRef,
    FeedbackResponse,
    Program,
    Prompt,
    Ticket,
    utcnow,
)
from .planner import PlannedAction
from .plugins import Platforms
from .runner import BATCH, Runner, batches

__all__ = ["SyncReport", "Syncer", "prompt_key"]

log = logging.getLogger(__name__)

STATUS_BATCH = 100
ROW_LOOKUPS = 20
"""Up to this many prompt keys are looked up in the ledger one by one; more, in one query."""
# Re-read a little before the cursor: platforms' updated-since reads have coarse clocks.
OVERLAP = timedelta(minutes=1)


def prompt_key(program: Program, prompt: Prompt, ticket: Ticket) -> str:
    return f"chg:{program.id}:prompt:{prompt.id}:{ticket.platform}:{ticket.id}"


@dataclass
class SyncReport:
    completed: int = 0
    reopened: int = 0
    feedback: int = 0
    prompts: int = 0
    matched: dict[str, int] = field(default_factory=dict)
    """Per prompt: the open tickets read this run that the prompt applies to."""
    posted: dict[str, int] = field(default_factory=dict)
    """Per prompt: the notes posted this run (matched tickets prompted before are not)."""
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"{self.completed} trainings completed, {self.reopened} reopened, "
                f"{self.feedback} feedback responses captured, {self.prompts} prompts posted "
                f"({sum(self.matched.values())} matching open tickets read)")
        if self.errors:
            text += f", {len(self.errors)} errors"
        return text


class Syncer:
    def __init__(self, program: Program, platforms: Platforms, ledger: Ledger,
                 clock: Callable[[], datetime], concurrency: int = 4) -> None:
        self.program = program
        self.concurrency = max(1, concurrency)
        self.platforms = platforms
        self.ledger = ledger
        self.clock = clock
        self._people_units: dict[tuple[str, str], str] | None = None
        if program.unmarked_feedback.enabled:
            from .insights import require_insights

            require_insights()

    @property
    def hook(self) -> Any:
        return self.platforms.pm.hook

    def _platforms(self) -> list[str]:
        return [p for p in self.program.platforms if p in self.platforms.instances]

    def run(self) -> SyncReport:
        report = SyncReport()
        self.ledger.release_dead_owners(self.clock())
        # Feedback last: the prompts' notes move their tickets' update times, and a feedback
        # cursor taken after them does not send the next sync back to read those tickets'
        # comments (on Freshservice, one request a ticket).
        for step in (self.sync_training, self.sync_acknowledgements, self.recover_prompts,
                     self.sweep_prompts, self.sync_feedback):
            try:
                step(report)
            except ITSMError as exc:
                report.errors.append(str(exc))
                log.error("%s", exc)
        return report

    # -- training ----------------------------------------------------------------------

    def sync_training(self, report: SyncReport) -> None:
        """Read back the open assignments, in batches: a sync costs what is still to be
        done, not every assignment ever made. (A completed task reopened on the platform is
        seen through its webhook event, not by polling.)"""
        rows = self.ledger.effects(self.program.id, kind=str(EffectKind.TRAINING),
                                   states=["done"])
        by_platform: dict[str, list[EffectRef]] = defaultdict(list)
        for row in rows:
            if row.ref is not None and not row.completed:
                by_platform[row.platform].append(row.ref)
        for platform, refs in by_platform.items():
            try:
                for start in range(0, len(refs), STATUS_BATCH):
                    statuses = self.platforms.call(
                        platform, "itsm_change_training_status",
                        refs=refs[start:start + STATUS_BATCH]) or []
                    for status in statuses:
                        self.record_completion(status.key, status.completed,
                                               status.completed_at, report)
            except ITSMError as exc:
                message = f"training status on {platform}: {exc}"
                report.errors.append(message)
                log.error("%s", message)

    def sync_acknowledgements(self, report: SyncReport) -> None:
        """Leaders' own tasks: briefs read and messages acknowledged (:mod:`.alliance`)."""
        from .alliance import read_acknowledgements

        read_acknowledgements(self.program, self.platforms, self.ledger, self.clock)

    def record_completion(self, key: str, completed: bool, at: datetime | None,
                          report: SyncReport | None = None) -> bool:
        """Mark a training assignment complete (or reopened); fires the observer once."""
        if not self.ledger.set_completed(key, completed, at or self.clock()):
            return False
        if report is not None:
            if completed:
                report.completed += 1
            else:
                report.reopened += 1
        self.hook.itsm_change_training_completed(program=self.program, key=key,
                                                 completed=completed)
        return True

    # -- feedback ----------------------------------------------------------------------

    def _unit_of(self, platform: str, person: str) -> str | None:
        if self._people_units is None:
            self._people_units = {}
            for row in self.ledger.effects(self.program.id, kind=str(EffectKind.TRAINING)):
                unit = row.meta.get("unit")
                if row.recipient and unit:
                    self._people_units.setdefault((row.platform, row.recipient), unit)
            for row in self.ledger.effects(self.program.id,
                                           kind=str(EffectKind.FEEDBACK_REQUEST)):
                unit = row.meta.get("unit")
                if row.recipient and unit:
                    self._people_units.setdefault((row.platform, row.recipient), unit)
        return self._people_units.get((platform, person))

    def sync_feedback(self, report: SyncReport) -> None:
        """Marked comments and survey answers since each cursor, one platform at a time (a
        platform that fails is reported and the others go on)."""
        for platform in self._platforms():
            try:
                self._sync_feedback(platform, report)
            except ITSMError as exc:
                message = f"feedback on {platform}: {exc}"
                report.errors.append(message)
                log.error("%s", message)

    def _advance(self, name: str, latest: datetime | None, started: datetime) -> None:
        """Move a cursor after a successful pass, found or not: to the newest item read, or
        to when the read started (less the overlap), whichever is later, so a quiet program
        does not rescan its whole history on every sync. ``started`` is never later than the
        real time: a rehearsal with a future ``--as-of`` must not push cursors past what the
        platform has yet to write."""
        floor = started - OVERLAP
        self.ledger.set_cursor(name, max(latest or floor, floor).isoformat(), self.clock())

    def _first_read(self, platform: str) -> datetime:
        """Where a feedback cursor starts: a day before the program's first wave starts, its
        first write on ``platform`` or now, whichever is earliest. Feedback answers something
        the program did, so nothing before can be feedback, and the first sync reads only
        the program's time, not the platform's whole history (on Freshservice, every
        ticket's conversations)."""
        moments = [datetime.combine(w.starts, time.min, UTC) for w in self.program.waves]
        moments += [row.created_at for row in self.ledger.effects(self.program.id)
                    if row.platform == platform]
        # Never later than now (the rehearsal clock or the real one): staff comment in real
        # time even while a rehearsal runs ahead of it.
        return min([*moments, self.clock(), utcnow()]) - timedelta(days=1)

    def _sync_feedback(self, platform: str, report: SyncReport) -> None:
        cursor_name = f"{self.program.id}:feedback:{platform}:comments"
        since = self._cursor(cursor_name) or self._first_read(platform)
        started = min(self.clock(), utcnow())
        latest = since
        comments: Iterable[Comment] = self.platforms.call(
            platform, "itsm_change_find_comments", marker=self.program.feedback_marker,
            since=since - OVERLAP) or []
        for comment in comments:
            self.capture_comment(comment, report)
            if latest is None or comment.created_at > latest:
                latest = comment.created_at
        self._advance(cursor_name, latest, started)
        if self.platforms.implements(platform, "itsm_change_collect_survey_answers"):
            cursor_name = f"{self.program.id}:feedback:{platform}:survey"
            since = self._cursor(cursor_name) or self._first_read(platform)
            started = min(self.clock(), utcnow())
            latest = since
            answers: Iterable[FeedbackResponse] = self.platforms.call(
                platform, "itsm_change_collect_survey_answers", program=self.program,
                since=since) or []
            for answer in answers:
                unit = answer.unit or self._unit_of(platform, answer.person)
                self.capture(FeedbackResponse(
                    id=answer.id, platform=answer.platform, program=answer.program,
                    person=answer.person, submitted_at=answer.submitted_at,
                    scores=answer.scores, text=answer.text, source=answer.source,
                    ticket_id=answer.ticket_id, unit=unit, survey=answer.survey,
                ), report)
                if latest is None or answer.submitted_at > latest:
                    latest = answer.submitted_at
            self._advance(cursor_name, latest, started)

    def capture_comment(self, comment: Comment, report: SyncReport | None = None) -> bool:
        """Capture the feedback a marked comment carries, or the feedback the classifier
        finds in an unmarked one when the program asks; False when it carries none or was
        captured before."""
        parsed = parse_feedback(comment.text, self.program.feedback_marker)
        if parsed is None:
            return self.capture_unmarked(comment, report)
        if not parsed.scores and not parsed.text:
            return False
        survey = parsed.survey or (self.program.surveys[0].id if parsed.scores
                                   and self.program.surveys else None)
        response = FeedbackResponse(
            id=f"comment:{comment.id}", platform=comment.platform, program=self.program.id,
            person=comment.author, submitted_at=comment.created_at, scores=parsed.scores,
            text=parsed.text, source="comment", ticket_id=comment.ticket_id,
            unit=self._unit_of(comment.platform, comment.author), survey=survey,
        )
        return self.capture(response, report)

    def capture_unmarked(self, comment: Comment, report: SyncReport | None = None) -> bool:
        """Inferred feedback (``feedback: {unmarked: true}``), from the program's own staff
        only: a comment whose author is in none of its units (a requester, the integration
        account that writes the program's notes) is never read."""
        if not self.program.unmarked_feedback.enabled:
            return False
        from .insights.capture import infer_feedback

        unit = self._unit_of(comment.platform, comment.author)
        response = infer_feedback(self.program, comment, unit)
        return response is not None and self.capture(response, report)

    def capture(self, response: FeedbackResponse, report: SyncReport | None = None) -> bool:
        if not self.ledger.add_feedback(response):
            return False
        if report is not None:
            report.feedback += 1
        self.hook.itsm_change_feedback_captured(program=self.program, response=response)
        return True

    # -- prompts -----------------------------------------------------------------------

    def recover_prompts(self, report: SyncReport) -> None:
        """Finish prompts an interrupted or failed run left ``pending`` or ``failed``: the
        sweep's cursor has moved past their tickets, so they are re-read (or found gone)
        and posted here. One ticket the platform refuses to show fails alone."""
        now = self.clock()
        prompts = {p.id: p for p in self.program.prompts}
        waiting: dict[str, list[Ticket]] = defaultdict(list)
        for row in self.ledger.effects(self.program.id, kind=str(EffectKind.PROMPT),
                                       states=["pending", "failed"]):
            if row.lease_until is not None and row.lease_until >= now:
                continue
            prompt = prompts.get(row.meta.get("prompt", ""))
            if prompt is None or row.ticket_id is None or \
                    row.platform not in self.platforms.instances:
                continue
            try:
                ticket = self.platforms.call(row.platform, "itsm_change_get_ticket",
                                             ticket_id=row.ticket_id)
            except ITSMError as exc:
                report.errors.append(f"prompt {prompt.id!r} on ticket {row.ticket_id}: {exc}")
                continue
            if ticket is not None:
                waiting[prompt.id].append(ticket)
        for prompt_id, tickets in waiting.items():
            report.prompts += self.post_prompts(prompts[prompt_id], tickets, report)

    def sweep_prompts(self, report: SyncReport) -> None:
        """Post each active prompt on the open tickets it matches, one prompt and platform at
        a time: a query the platform refuses fails that pair alone, named in the report."""
        now = self.clock()
        for prompt in self.program.prompts:
            if not prompt.active_at(now):
                continue
            for platform in self._platforms():
                if prompt.filter.platform and prompt.filter.platform != platform:
                    continue
                try:
                    self._sweep(prompt, platform, now, report)
                except ITSMError as exc:
                    message = f"prompt {prompt.id!r} on {platform}: {exc}"
                    report.errors.append(message)
                    log.error("%s", message)

    def _sweep(self, prompt: Prompt, platform: str, now: datetime, report: SyncReport) -> None:
        """Read the whole match set, then write.

        A note moves its ticket's update time, and the platforms page their ticket queries by
        offset or by update time: notes written between two page reads would shift unread
        tickets past the next page for good. So nothing is written until the last page is
        read, and the cursor moves only after every ticket read was handled (posted, or left
        ``pending``/``failed`` in the ledger for :meth:`recover_prompts`).
        """
        cursor_name = f"{self.program.id}:prompts:{platform}:{prompt.id}"
        since = self._cursor(cursor_name) or prompt.active_from
        started = min(now, utcnow())
        tickets: list[Ticket] = list(self.platforms.call(
            platform, "itsm_change_find_tickets", filter=prompt.filter,
            since=since - OVERLAP, open_only=True) or [])
        latest = max((t.updated_at for t in tickets), default=since)
        matching = [t for t in tickets if self.prompt_applies(prompt, t)]
        report.matched[prompt.id] = report.matched.get(prompt.id, 0) + len(matching)
        posted = self.post_prompts(prompt, matching, report)
        report.prompts += posted
        report.posted[prompt.id] = report.posted.get(prompt.id, 0) + posted
        self._advance(cursor_name, max(latest, since), started)

    def prompt_applies(self, prompt: Prompt, ticket: Ticket) -> bool:
        """A prompt shows on an open matching ticket of a started unit, in its window."""
        if not ticket.is_open or not prompt.active_at(self.clock()):
            return False
        if not prompt.filter.matches(ticket):
            return False
        unit = self.program.unit_for_ticket(ticket)
        if unit is None or (prompt.units and unit.id not in prompt.units):
            return False
        return self.program.wave_started(unit, self.clock())

    def post_prompts(self, prompt: Prompt, tickets: Iterable[Ticket],
                     report: SyncReport | None = None) -> int:
        """Post ``prompt`` on each ticket it applies to, once per ticket; returns how many
        were posted. Notes that failed stay in the ledger for the next run and are counted
        in ``report``'s errors."""
        applicable = [t for t in tickets if self.prompt_applies(prompt, t)]
        rows = self._prompt_rows([prompt_key(self.program, prompt, t) for t in applicable])
        effects: list[Effect] = []
        for ticket in applicable:
            key = prompt_key(self.program, prompt, ticket)
            row = rows.get(key)
            if row is not None and row.state == "done":
                continue
            text = self.hook.itsm_change_compose_prompt(
                prompt=prompt, ticket=ticket, text=prompt.text) or prompt.text
            unit = self.program.unit_for_ticket(ticket)
            effects.append(Effect(
                key=key, kind=EffectKind.PROMPT, platform=ticket.platform,
                program=self.program.id, title=prompt.title, body=text,
                channel="ticket_note", ticket_id=ticket.id,
                meta={"prompt": prompt.id, "unit": unit.id if unit else "",
                      "ticket_number": ticket.number}))
        if not effects:
            return 0
        posted, failed = self._post(effects, rows)
        if failed and report is not None:
            key, error = failed[0]
            report.errors.append(
                f"prompt {prompt.id!r}: {len(failed)} notes failed and will be retried by "
                f"the next sync; first: {key}: {error}")
        return posted

    def _prompt_rows(self, keys: list[str]) -> dict[str, EffectRow]:
        """The ledger's rows for these prompt keys: one query for a sweep's worth, a look-up
        each for the few a webhook event brings."""
        if len(keys) <= ROW_LOOKUPS:
            return {row.key: row for row in map(self.ledger.get, keys) if row is not None}
        wanted = set(keys)
        return {row.key: row for row in self.ledger.effects(
            self.program.id, kind=str(EffectKind.PROMPT)) if row.key in wanted}

    def _post(self, effects: list[Effect], rows: dict[str, EffectRow]
              ) -> tuple[int, list[tuple[str, str]]]:
        """Post through the runner's write path (claimed, looked up if an earlier run left
        them pending, recorded), with its bounded concurrency: platforms without a bulk
        note endpoint write one note per request, so batches go out side by side."""
        actions = [PlannedAction("create", e.key, str(e.kind), e.platform, e.title, e,
                                 rows.get(e.key)) for e in effects]
        runner = Runner(self.program, self.platforms, self.ledger, self.clock,
                        self.concurrency)
        runner.recover(actions)
        posted = 0
        failed: list[tuple[str, str]] = []
        chunks = [batch[start:start + size] for batch in batches(actions)
                  for size in [self._chunk(batch[0].platform)]
                  for start in range(0, len(batch), size)]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for outcome in pool.map(runner.run_batch, chunks):
                for key, _done, error in outcome:
                    if error is None:
                        posted += 1
                    else:
                        failed.append((key, error))
        return posted, failed

    def _chunk(self, platform: str) -> int:
        """Notes per write call. A platform that writes one note per request names a smaller
        ``write_chunk`` than a batch, so every worker stays busy to the end and the ledger's
        claims for one chunk overlap the requests of the others; one with a bulk endpoint
        keeps whole batches."""
        size = getattr(self.platforms.instances.get(platform), "write_chunk", None)
        return size if isinstance(size, int) and size > 0 else BATCH

    def _cursor(self, name: str) -> datetime | None:
        value = self.ledger.cursor(name)
        return datetime.fromisoformat(value) if value else None
