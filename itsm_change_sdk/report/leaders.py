"""Leaders walk the talk: what alliance members and sponsors do, not what they say.

Per leader, from the ledger: their own training completed, the communications addressed to
them (tasks, which have an acknowledgement) that they closed, their check-in briefs closed
(a check-in held), and their sign-offs given before the wave started. And, for the no-radio-
silence rule, the live units that have gone longer than ``silence_days`` without a message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from ..ledger import EffectRow, SignOff
from ..model import EffectKind, Program
from .svg import esc

__all__ = ["LeaderRow", "SilentUnit", "leader_lines", "leader_measures", "leaders_html",
           "silent_units"]


@dataclass
class LeaderRow:
    id: str
    name: str
    role: str
    """``alliance`` or ``sponsor``."""
    training_assigned: int = 0
    training_done: int = 0
    messages: int = 0
    """Communications addressed to them as a task (they can acknowledge it)."""
    acknowledged: int = 0
    checkins: int = 0
    """Check-in briefs delivered to them."""
    checkins_held: int = 0
    signoffs: int = 0
    """Waves they sign off that have started, or that they signed already."""
    signoffs_on_time: int = 0
    late: list[str] = field(default_factory=list)
    """Waves signed off after they started, or started without their sign-off."""


def leader_measures(program: Program, rows: Iterable[EffectRow], signoffs: Sequence[SignOff],
                    as_of: datetime) -> list[LeaderRow]:
    """One row per alliance member, then per sponsor."""
    out: dict[str, LeaderRow] = {}
    for member in program.alliance:
        out[member.id] = LeaderRow(member.id, member.name, "alliance")
    for sponsor in program.sponsors:
        out.setdefault(sponsor.id, LeaderRow(sponsor.id, sponsor.name, "sponsor"))
    for row in rows:
        if row.state != "done":
            continue
        if row.kind == EffectKind.TRAINING and row.meta.get("leader") in out:
            leader = out[row.meta["leader"]]
            leader.training_assigned += 1
            leader.training_done += row.completed
        elif row.kind == EffectKind.MESSAGE and row.recipient in out:
            leader = out[row.recipient]
            if "checkin" in row.meta:
                leader.checkins += 1
                leader.checkins_held += row.completed
            else:
                leader.messages += 1
                leader.acknowledged += row.completed
    signed = {(s.member, s.wave): s.signed_at for s in signoffs}
    today = as_of.date()
    for member in program.alliance:
        leader = out[member.id]
        for wave_id in member.signs_off:
            starts = program.wave(wave_id).starts
            when = signed.get((member.id, wave_id))
            if when is None and starts > today:
                continue
            leader.signoffs += 1
            if when is not None and when.date() < starts:
                leader.signoffs_on_time += 1
            else:
                leader.late.append(wave_id)
    return list(out.values())


def _ratio(done: int, total: int) -> str:
    return f"{done}/{total}" if total else "-"


def leader_lines(leaders: Sequence[LeaderRow]) -> list[str]:
    """The terminal section: one line per leader."""
    if not leaders:
        return []
    lines = ["", "Leaders (what they do: own training, tasks acknowledged, check-ins held, "
                 "sign-offs on time):",
             f"  {'leader':<22} {'role':<9} {'training':>8} {'acknowledged':>12} "
             f"{'check-ins':>9} {'sign-offs':>9}"]
    for row in leaders:
        late = f"  late or missing: {', '.join(row.late)}" if row.late else ""
        lines.append(
            f"  {row.name:<22} {row.role:<9} "
            f"{_ratio(row.training_done, row.training_assigned):>8} "
            f"{_ratio(row.acknowledged, row.messages):>12} "
            f"{_ratio(row.checkins_held, row.checkins):>9} "
            f"{_ratio(row.signoffs_on_time, row.signoffs):>9}{late}")
    return lines


def leaders_html(leaders: Sequence[LeaderRow]) -> list[str]:
    if not leaders:
        return []
    head = "".join(f"<th scope=col{' class=n' if n else ''}>{esc(t)}</th>" for t, n in (
        ("leader", False), ("role", False), ("own training done", True),
        ("tasks acknowledged", True), ("check-ins held", True), ("sign-offs on time", True),
        ("late or missing", False)))
    out = ['<section id="leaders"><h2>Leaders: what they do</h2>',
           f"<table><thead><tr>{head}</tr></thead>"]
    for row in leaders:
        out.append(
            f"<tr><td>{esc(row.name)}</td><td>{esc(row.role)}</td>"
            f"<td class=n>{_ratio(row.training_done, row.training_assigned)}</td>"
            f"<td class=n>{_ratio(row.acknowledged, row.messages)}</td>"
            f"<td class=n>{_ratio(row.checkins_held, row.checkins)}</td>"
            f"<td class=n>{_ratio(row.signoffs_on_time, row.signoffs)}</td>"
            f"<td>{esc(', '.join(row.late))}</td></tr>")
    out.append("</table></section>")
    return out


# -- no radio silence --------------------------------------------------------------------


@dataclass(frozen=True)
class SilentUnit:
    unit: str
    title: str
    last_message: date | None
    """The day the unit last got a message (None: never since go-live)."""
    days: int
    """Days since that message, or since go-live when there was none."""


def silent_units(program: Program, rows: Iterable[EffectRow], as_of: datetime
                 ) -> list[SilentUnit]:
    """Live units whose last message (any channel) is more than ``silence_days`` old."""
    audiences = {e.id: [a for a in e.audience if a != "alliance"]
                 for e in program.communications}
    last: dict[str, date] = {}
    for row in rows:
        if row.state != "done" or row.kind not in (EffectKind.MESSAGE,
                                                   EffectKind.FEEDBACK_REQUEST):
            continue
        units = [row.meta["unit"]] if "unit" in row.meta else audiences.get(
            row.meta.get("event", ""), [])
        day = row.created_at.date()
        for unit_id in units:
            if unit_id not in last or day > last[unit_id]:
                last[unit_id] = day
    today = as_of.date()
    out = []
    for unit in program.units:
        go_live = program.wave(unit.wave).go_live
        if go_live > today:
            continue
        seen = last.get(unit.id)
        since = seen if seen is not None and seen >= go_live else go_live
        days = (today - since).days
        if days > program.silence_days:
            out.append(SilentUnit(unit.id, unit.title, seen if seen and seen >= go_live
                                  else None, days))
    return out
