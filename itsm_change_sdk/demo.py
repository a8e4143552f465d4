"""``itsm-change demo``: the example program run end to end on the sandbox.

It builds a sandbox organisation (people, service-desk groups, a few hundred tickets of
history), applies ``examples/portal-rollout/program.yaml``, and simulates weeks of staff
activity on a simulated calendar: tickets raised through the old and the new channel,
training completed or not, survey answers, comments carrying feedback. Apply and sync run
each working day, as a scheduled job would. A fixed seed gives the same output every time.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from .config import sandbox_url
from .errors import ConfigurationError
from .feedback import example_answer
from .model import ADKAR_DIMENSIONS, EffectKind, Person, Program, TicketFilter
from .plugins import metric_registry
from .sandbox.platform import SandboxPlatform
from .sandbox.store import SandboxStore
from .workspace import Workspace

__all__ = ["DemoResult", "SimClock", "alliance_lines", "example_program_path", "run_demo",
           "summary"]

FIRST_NAMES = ["Alex", "Sam", "Priya", "Jonas", "Mei", "Omar", "Lena", "Tomás", "Aisha", "Noah",
               "Ines", "Kenji", "Fatima", "Lucas", "Zoe", "Ravi", "Elif", "Marta", "Ola", "Yusuf"]
LAST_NAMES = ["Ng", "Berg", "Shah", "Keller", "Lin", "Haddad", "Novak", "Silva", "Bello",
              "Murphy", "Rossi", "Sato", "Khan", "Moreau", "Evans", "Iyer", "Demir", "Costa"]
CATEGORIES = ["password reset", "access", "hardware", "software", "network", "email"]
OLD_CHANNELS = [("email", 0.49), ("phone", 0.42), ("chat", 0.09)]
TEAM_SIZES = {"sd-tier1": 12, "sd-tier2": 9, "field-services": 7, "app-support": 7}
# How each unit's staff feel about the change, per ADKAR dimension (mean score).
ADKAR_PROFILE = {"awareness": 4.2, "desire": 3.6, "knowledge": 3.2, "ability": 2.6,
                 "reinforcement": 3.1}
FEEDBACK_REMARKS = [
    "the portal category list confuses callers",
    "knowledge articles are hard to find from the ticket form",
    "callers like tracking their own tickets",
    "the self-service reset works well once people find it",
    "we need a quick guide for walk-ins",
]


def example_program_path() -> Path:
    """The example program, from the source tree or the installed package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "examples" / "portal-rollout" / "program.yaml",
                      here / "examples" / "portal-rollout.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigurationError("the example program is missing from this installation; "
                             "pass one with --program")


@dataclass
class SimClock:
    """A settable clock: the demo's calendar."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class _Pending:
    at: datetime
    number: str
    reopen: bool = False


@dataclass
class DemoResult:
    program: Program
    start: date
    end: date
    lines: list[str] = field(default_factory=list)

    def render(self) -> str:
        return "\n".join(self.lines)


class _Simulation:
    def __init__(self, program: Program, ws: Workspace, store: SandboxStore, clock: SimClock,
                 seed: int) -> None:
        self.program = program
        self.ws = ws
        self.store = store
        self.clock = clock
        self.rng = random.Random(seed)
        # Leaders act on their own draws, so their tasks leave the staff's simulation as is.
        self.leader_rng = random.Random(seed + 1)
        self.leaders = {m.id for m in program.alliance} | {s.id for s in program.sponsors}
        self.members: dict[str, list[Person]] = {}
        self.requesters: list[Person] = []
        self.resolutions: list[_Pending] = []
        self.diligence: dict[str, float] = {}

    # -- the organisation ------------------------------------------------------------

    def seed_org(self, history_from: datetime) -> None:
        store = self.store
        store.add_ticket(title=f"{self.program.title}: change record", kind="change",
                         opened_at=history_from, channel=None, group=None)
        names = iter(sorted({f"{f} {la}" for f in FIRST_NAMES for la in LAST_NAMES}))
        for member in self.program.alliance:
            email = member.email or f"{member.id}@example.com"
            store.add_person(member.name, email, person_id=member.id)
        for unit in self.program.units:
            people = []
            for _ in range(TEAM_SIZES.get(unit.id, 6)):
                name = next(names)
                email = name.lower().replace(" ", ".").replace("á", "a") + "@example.com"
                person = store.add_person(name, email)
                people.append(person)
                self.diligence[person.id] = self.rng.uniform(0.05, 0.45)
            if unit.group:
                store.add_group(unit.group, people)
            self.members[unit.id] = people
        for _ in range(40):
            name = next(names)
            self.requesters.append(store.add_person(
                name, name.lower().replace(" ", ".").replace("á", "a") + "@corp.example.com"))
        # Sponsors last, so the staff keep the ids they had in programs without them.
        for sponsor in self.program.sponsors:
            store.add_person(sponsor.name, sponsor.email or f"{sponsor.id}@example.com",
                             person_id=sponsor.id)

    # -- behaviour -------------------------------------------------------------------

    def adoption(self, unit_id: str, day: date) -> float:
        """0 before go-live; after it, grows with the unit's training completion."""
        unit = self.program.unit(unit_id)
        if day < self.program.wave(unit.wave).go_live:
            return 0.0
        rows = [r for r in self.ws.ledger.effects(self.program.id, kind=str(EffectKind.TRAINING))
                if r.meta.get("unit") == unit_id and r.state == "done"]
        trained = sum(r.completed for r in rows) / len(rows) if rows else 0.0
        return 0.45 + 0.55 * trained

    def raise_tickets(self, day: date, per_unit: float) -> None:
        goal = next((g for g in self.program.goals if g.metric == "channel_share"), None)
        base = goal.baseline if goal else 0.18
        top = goal.target if goal else 0.5
        for unit in self.program.units:
            adoption = self.adoption(unit.id, day)
            portal_share = base + (top + 0.05 - base) * adoption
            count = int(per_unit) + (self.rng.random() < per_unit % 1)
            for _ in range(count):
                at = datetime.combine(day, time(9), UTC) + timedelta(
                    minutes=self.rng.randrange(0, 8 * 60))
                channel = "portal" if self.rng.random() < portal_share else self._old_channel()
                category = self.rng.choice(CATEGORIES)
                requester = self.rng.choice(self.requesters)
                ticket = self.store.add_ticket(
                    title=f"{category.capitalize()} issue for {requester.name}",
                    opened_at=at, category=category, group=unit.group, channel=channel,
                    requester=requester.id,
                    assignee=self.rng.choice(self.members[unit.id]).id)
                hours = self.rng.lognormvariate(3.2 - 0.45 * adoption, 0.45)
                self.resolutions.append(_Pending(at + timedelta(hours=hours), ticket.number))

    def _old_channel(self) -> str:
        roll = self.rng.random()
        for channel, share in OLD_CHANNELS:
            if roll < share:
                return channel
            roll -= share
        return OLD_CHANNELS[-1][0]

    def resolve_due(self, until: datetime) -> None:
        due = sorted((p for p in self.resolutions if p.at <= until), key=lambda p: p.at)
        self.resolutions = [p for p in self.resolutions if p.at > until]
        for pending in due:
            self.store.update_ticket(pending.number, state="resolved", at=pending.at)

    def staff_work(self, day: date) -> None:
        at = datetime.combine(day, time(16), UTC)
        # By correlation key, not task number: writes in flight side by side number the
        # tasks in a different order each run, and the seed must give the same story.
        for task in sorted(self.store.all_tasks(), key=lambda t: str(t["key"])):
            if task["state"] != "open":
                continue
            chance = self.diligence.get(task["assignee"], 0.2)
            draws = self.leader_rng if task["assignee"] in self.leaders else self.rng
            if draws.random() >= chance:
                continue
            if task["kind"] == "feedback":
                scores = {d: max(1, min(5, round(self.rng.gauss(ADKAR_PROFILE[d], 0.8))))
                          for d in ADKAR_DIMENSIONS}
                remark = self.rng.choice(FEEDBACK_REMARKS) if self.rng.random() < 0.5 else ""
                self.store.answer_survey(task["number"], scores, remark, at)
            else:
                self.store.set_task_state(task["number"], "closed", at)
        marker = self.program.feedback_marker
        for unit in self.program.units:
            if self.adoption(unit.id, day) == 0.0 or self.rng.random() > 0.35:
                continue
            open_tickets = list(self.store.tickets(_unit_filter(unit.group), open_only=True))
            if not open_tickets:
                continue
            ticket = self.rng.choice(open_tickets)
            agent = self.rng.choice(self.members[unit.id])
            marked = " ".join(f"{d}={max(1, min(5, round(self.rng.gauss(ADKAR_PROFILE[d], 0.9))))}"
                              for d in ("knowledge", "ability"))
            text = f"{marker} {marked} {self.rng.choice(FEEDBACK_REMARKS)}"
            self.store.add_note(ticket.number, agent.id, text, internal=True,
                                at=at + timedelta(minutes=30))


def _unit_filter(group: str | None) -> TicketFilter:
    return TicketFilter(groups=(group,) if group else ())


def run_demo(program: Program, *, db: str | None, seed: int, weeks: int,
             start: date | None = None, echo: Callable[[str], None] = print) -> DemoResult:
    """Reset the sandbox, seed it, and simulate ``weeks`` of the program."""
    first = program.waves[0]
    start = start or first.starts - timedelta(days=7)
    end = start + timedelta(weeks=weeks)
    clock = SimClock(datetime.combine(start - timedelta(weeks=8), time(8), UTC))
    store = SandboxStore(sandbox_url(), clock=clock)
    store.reset()
    with Workspace(db, clock=clock) as ws:
        ws.ledger.forget_platform("sandbox")
        ws.ledger.forget_program(program.id)
        ws.platforms.add("sandbox", SandboxPlatform(store))
        sim = _Simulation(program, ws, store, clock, seed)
        sim.seed_org(clock.now)
        # The pilot's managers agreed to it up front; later waves wait for their sign-off.
        for member in program.alliance:
            if first.id in member.signs_off:
                ws.ledger.sign_off(program.id, first.id, member.id, "ready for the pilot",
                                   datetime.combine(start, time(9), UTC))
        echo(f"Sandbox organisation: {len(store.people())} people, "
             f"{len(program.units)} service-desk groups.")
        echo("Raising 8 weeks of ticket history...")
        day = clock.now.date()
        while day < start:
            if day.weekday() < 5:
                clock.now = datetime.combine(day, time(8), UTC)
                sim.raise_tickets(day, per_unit=1.6)
                sim.resolve_due(datetime.combine(day, time(23), UTC))
            day += timedelta(days=1)
        history = sum(1 for _ in store.tickets())
        echo(f"History: {history} tickets over the 8 weeks before the program.")
        totals: Counter[str] = Counter()
        while day < end:
            if day.weekday() < 5:
                clock.now = datetime.combine(day, time(8), UTC)
                report = ws.apply(program)
                totals.update(created=report.created, updated=report.updated,
                              retired=report.retired, skipped=report.skipped)
                for key, error in report.failed:
                    echo(f"  failed {key}: {error}")
                sim.raise_tickets(day, per_unit=1.6)
                sim.resolve_due(datetime.combine(day, time(17), UTC))
                sim.staff_work(day)
                clock.now = datetime.combine(day, time(18), UTC)
                synced = ws.sync(program)
                totals.update(prompts=synced.prompts, feedback=synced.feedback,
                              completed=synced.completed)
            day += timedelta(days=1)
            if (day - start).days % 7 == 0:
                echo(_week_line((day - start).days // 7, weeks, totals))
        echo(f"Simulated {start} to {end - timedelta(days=1)} (seed {seed}): "
             f"{totals['created']} effects created, {totals['updated']} updated, "
             f"{totals['skipped']} skipped, {totals['prompts']} prompts posted, "
             f"{totals['completed']} trainings completed, {totals['feedback']} feedback "
             "responses.")
        result = DemoResult(program, start, end)
        result.lines = summary(program, ws, store)
        return result


def _week_line(done: int, weeks: int, totals: Counter[str]) -> str:
    """One line a simulated week, so a long demo never sits silent."""
    return (f"  week {done} of {weeks}: {totals['created']} effects created, "
            f"{totals['prompts']} prompts, {totals['completed']} trainings completed, "
            f"{totals['feedback']} feedback responses so far")


def summary(program: Program, ws: Workspace, store: SandboxStore) -> list[str]:
    """The adoption report for the simulated weeks: the numbers ``itsm-change report``
    shows, from the same code, so the demo and the report never disagree."""
    from .report.build import build_report
    from .report.terminal import render_text

    now = ws.clock()
    report = build_report(program, ws.ledger, store.tickets(), metric_registry(ws.pm).kinds,
                          now=now, as_of=now)
    lines = render_text(report, texts_per_group=1)
    lines[0] = f"Adoption summary: {program.title}"
    lines += alliance_lines(program, ws, store)
    if not report.silent:
        lines.append(f"  No radio silence: every live unit heard from the program within "
                     f"{program.silence_days} days.")
    lines += ["", f"Answer in any ticket with: {example_answer(program.feedback_marker)}",
              "The full report with charts: itsm-change report PROGRAM --html report.html"]
    return lines




def alliance_lines(program: Program, ws: Workspace, store: SandboxStore) -> list[str]:
    """The alliance's rhythm as the demo ran it: the check-in briefs and how many were
    read, the latest brief of the first alliance member (the pilot's manager in the
    example), and the messages that quoted results."""
    rows = ws.ledger.effects(program.id, kind=str(EffectKind.MESSAGE), states=["done"])
    briefs = [r for r in rows if "checkin" in r.meta]
    quoting = [r for r in rows if "quoted" in r.meta]
    if not briefs and not quoting:
        return []
    occurrences = len({r.meta["occurrence"] for r in briefs})
    lines = ["", "The management alliance at work:",
             f"  {len(briefs)} check-in briefs over {occurrences} occurrences, "
             f"{sum(r.completed for r in briefs)} closed by their reader"]
    pilot = [r for r in briefs if r.recipient == program.alliance[0].id]
    if pilot:
        latest = max(pilot, key=lambda r: r.meta["occurrence"])
        task = store.task_by_key(latest.key)
        if task is not None:
            lines.append(f"  The latest brief, to {latest.recipient}:")
            lines += [f"    {line}" if line else "" for line in task["body"].splitlines()]
    for row in quoting:
        lines.append(f"  Results quoted in '{row.title}' ({row.created_at:%Y-%m-%d}): "
                     + row.meta["quoted"].replace("; ", ", "))
    return lines
