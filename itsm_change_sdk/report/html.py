"""The report as one self-contained HTML page: inline CSS, inline SVG, no scripts.

Nothing in the page points to the network (no fonts, images, scripts or stylesheets), and a
Content-Security-Policy forbids loading anything, so it can be mailed or attached to a
change record and opens the same offline. Every text from tickets, comments and the program
file is escaped.

The page answers first (the verdict), then gives the detail. It reads on a phone without
sideways scrolling, prints every section (the free text included), follows the reader's
dark mode, and uses a colour-blind-safe palette (Okabe-Ito) with markers and direct labels.
"""

from __future__ import annotations

from datetime import date

from ..metrics import GoalResult, UnitResult
from ..model import Program
from .build import Report
from .gates import fmt_value, status_text
from .leaders import leaders_html
from .svg import MARKERS, Bar, Line, Series, bar_chart, esc, line_chart, nice_ceiling, slug
from .verdict import Verdict

__all__ = ["render_html"]

# Okabe-Ito: told apart with the common colour-vision deficiencies; series also differ by
# marker and dash, and are labelled where they end.
DIM_COLORS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000"]
DIM_DASHES = ["", "6 3", "2 2", "8 3 2 3", "1 3", "", "4 2"]
UNIT_LINE = "#0072b2"
TARGET = "#009e73"
BASELINE = "#888888"
GO_LIVE = "#d55e00"
OK_BAR = "#009e73"
LOW_BAR = "#d55e00"

CSS = """
:root{color-scheme:light dark;--fg:#1f2328;--bg:#f4f5f7;--panel:#fff;--line:#d0d7de;
 --muted:#57606a;--ok:#1a7f37;--no:#cf222e;--warn:#9a6700;--note:#fff8c5;--note-line:#e3c55a;
 --head:#f6f8fa;--plot:#fafafa;--grid:#eee}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--panel:#161b22;
 --line:#30363d;--muted:#9198a1;--ok:#3fb950;--no:#ff7b72;--warn:#d29922;--note:#2d2a14;
 --note-line:#6e5a1e;--head:#1c2128;--plot:#0d1117;--grid:#21262d}}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:0;color:var(--fg);background:var(--bg);overflow-wrap:anywhere}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:24px;margin:8px 0 2px}h2{font-size:19px;margin:30px 0 8px;
 border-bottom:2px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:14px 0 6px}
.sub{color:var(--muted);margin:0 0 8px}.note{background:var(--note);
 border:1px solid var(--note-line);padding:6px 10px;border-radius:6px;margin:6px 0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{background:var(--panel);border:1px solid var(--line);border-radius:8px;
 padding:10px 14px;min-width:min(200px,100%);flex:1}
.card .big{font-size:22px;font-weight:700}.open{color:var(--ok)}.closed{color:var(--no)}
.grid{display:flex;flex-wrap:wrap;gap:14px}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:8px;
 padding:8px 10px;max-width:100%;min-width:0}
.panel h3{margin:2px 0 4px}.status{font-size:12px;color:var(--muted);margin:0 0 4px}
table{border-collapse:collapse;background:var(--panel);margin:8px 0;font-size:13px;
 max-width:100%}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right}th{background:var(--head)}
ul.conds{list-style:none;padding-left:4px;margin:4px 0}ul.conds li{margin:2px 0}
.ok{color:var(--ok)}.no{color:var(--no)}.warn{color:var(--warn)}
details{background:var(--panel);border:1px solid var(--line);border-radius:6px;
 padding:6px 10px;margin:6px 0}summary{cursor:pointer;font-weight:600}
blockquote{margin:4px 0 4px 8px;padding:2px 8px;border-left:3px solid var(--line)}
.meta{color:var(--muted);font-size:12px}
svg.chart{max-width:100%;height:auto;display:block}
svg.chart text{fill:var(--fg)}svg.chart .plot{fill:var(--plot);stroke:var(--line)}
svg.chart .grid{stroke:var(--grid)}
#verdict{background:var(--panel);border:2px solid var(--line);border-radius:10px;
 padding:4px 16px 12px;margin-top:16px}#verdict h2{margin-top:10px}
#verdict ul{padding-left:20px;margin:6px 0}#verdict li{margin:3px 0}
.badge{font-weight:700}
@media (max-width:600px){main{padding:12px 10px 40px}h1{font-size:20px}
 table{font-size:12px;width:100%}th,td{padding:3px 4px}.panel{width:100%}}
@media print{:root{--fg:#000;--bg:#fff;--panel:#fff;--line:#999;--muted:#333;--head:#eee;
 --plot:#fff;--grid:#ddd;--note:#fff;--note-line:#999}
 body{background:#fff;font-size:11pt}main{max-width:none;padding:0}
 details::details-content{content-visibility:visible;display:block}
 summary{list-style:none}.panel,svg.chart,tr,blockquote,.card{break-inside:avoid}
 h2,h3{break-after:avoid}}
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _header(*names: str) -> str:
    """A table's header row; ``n:`` marks a numeric (right-aligned) column."""
    cells = "".join(f"<th scope=col class=n>{esc(n[2:])}</th>" if n.startswith("n:")
                    else f"<th scope=col>{esc(n)}</th>" for n in names)
    return f"<thead><tr>{cells}</tr></thead>"


def _verdict(report: Report) -> list[str]:
    found: Verdict = report.verdict
    program = report.program
    out = ['<section id="verdict" aria-labelledby="verdict-title">',
           '<h2 id="verdict-title">Verdict</h2><ul>']
    if found.goals:
        for g in found.goals:
            cls = {"met": "ok", "trending": "ok", "not met": "no"}.get(g.standing, "warn")
            why = f" <span class=meta>({esc(g.reason)})</span>" if g.reason else ""
            out.append(f"<li><span class='badge {cls}'>{esc(g.standing)}</span>: "
                       f"{esc(g.title)}, {esc(program.unit(g.unit).title)}: "
                       f"{esc(g.value)}{why}</li>")
    else:
        out.append("<li>No unit is live yet: no goal can be judged.</li>")
    if found.next_wave is None:
        out.append("<li>Every wave has started.</li>")
    else:
        state = "open" if found.gate_open else "closed"
        out.append(f"<li>Next wave <b>{esc(found.next_wave)}</b> (starts "
                   f"{esc(found.next_wave_starts)}): <span class='badge {state}'>gate {state}"
                   "</span>")
        if found.blocking:
            out.append("<ul>" + "".join(f"<li class=no>{esc(b)}</li>"
                                        for b in found.blocking) + "</ul>")
        out.append("</li>")
    if found.weakest is None or found.weakest_score is None:
        out.append("<li>Weakest ADKAR dimension: no answers from live units yet.</li>")
    else:
        out.append(f"<li>Weakest ADKAR dimension (live units): <b>{esc(found.weakest)}</b> "
                   f"({found.weakest_score:.1f} of 5)</li>")
    if found.frequent is not None:
        out.append(f"<li>Most frequent feedback: {found.frequent_count} of "
                   f"{found.frequent_total} written answers come from people who scored "
                   f"<b>{esc(found.frequent)}</b> lowest "
                   "(<a href=\"#texts\">read them</a>)</li>")
    out.append("</ul></section>")
    return out


def _ord_fmt(value: float) -> str:
    return date.fromordinal(int(value)).strftime("%d %b")


def _y_range(values: list[float], label: str, *extra: float) -> tuple[float, float]:
    known = values + list(extra)
    if label == "share":
        return 0.0, max(1.0, max(known, default=1.0))
    return 0.0, nice_ceiling(max(known, default=1.0) * 1.05)


def _goal_chart(program: Program, result: GoalResult, unit_id: str, r: UnitResult) -> str:
    label = result.unit_label
    goal = result.goal
    unit = program.unit(unit_id)
    points = [(float(w.toordinal()), v) for w, v in r.weekly.items() if v is not None]
    go_live = program.wave(unit.wave).go_live
    lines = [Line(goal.target, f"target {fmt_value(goal.target, label)}", TARGET),
             Line(goal.baseline, f"baseline {fmt_value(goal.baseline, label)}", BASELINE, "2 3")]
    if points and points[0][0] <= go_live.toordinal() <= points[-1][0] + 7:
        lines.append(Line(float(go_live.toordinal()), "go-live", GO_LIVE, "3 3", vertical=True))
    if points:
        last_week, last_value = points[-1]
        described = (f"Week of {_ord_fmt(last_week)}: {fmt_value(last_value, label)} against a "
                     f"target of {fmt_value(goal.target, label)} (baseline "
                     f"{fmt_value(goal.baseline, label)}); go-live {go_live}.")
    else:
        described = "No tickets yet."
    return line_chart(
        f"chart-goal-{slug(goal.id)}-{slug(unit_id)}",
        f"{goal.title}: {unit.title}, weekly, against target",
        [Series(f"{unit.title} weekly", UNIT_LINE, points)],
        y_range=_y_range([v for _, v in points], label, goal.target, goal.baseline),
        y_fmt=lambda v: fmt_value(v, label), x_fmt=_ord_fmt, lines=lines,
        description=described)


def _goals(report: Report) -> list[str]:
    program = report.program
    out = ['<section id="goals"><h2>Goals: weekly trend against target</h2>']
    for result in report.goals:
        goal = result.goal
        label = result.unit_label
        out.append(f"<h3>{esc(goal.title)} <span class=meta>({esc(goal.id)}, "
                   f"{esc(result.kind_title)})</span></h3><div class=grid>")
        for unit_id, r in result.units.items():
            unit = program.unit(unit_id)
            cls = {"met": "ok", "not met": "no", "unknown": "warn"}.get(r.status, "meta")
            out.append(
                f'<div class=panel><h3>{esc(unit.title)} <span class=meta>{esc(unit.wave)}'
                f'</span></h3><p class="status {cls}">{esc(status_text(r))}: now '
                f"{esc(fmt_value(r.current, label))} ({r.current_count} tickets), before "
                f"{esc(fmt_value(r.before, label))}, target {esc(fmt_value(goal.target, label))}"
                f"</p>{_goal_chart(program, result, unit_id, r)}</div>")
        out.append("</div>")
    out.append("</section>")
    return out


def _training(report: Report) -> list[str]:
    program = report.program
    threshold = program.training_threshold
    bars = []
    for unit in program.units:
        cell = report.training.by_unit.get(unit.id)
        share = cell.share if cell else None
        planned = report.training.planned.get(unit.id)
        if cell is None or share is None:
            text = "not assigned yet" if planned else "none planned"
        else:
            text = f"{share:.0%} ({cell.completed}/{cell.assigned}, {cell.overdue} overdue)"
        color = OK_BAR if share is not None and share >= threshold else LOW_BAR
        bars.append(Bar(unit.title, share, color, text))
    described = "; ".join(f"{b.label}: {b.text}" for b in bars)
    chart = bar_chart("chart-training", "Training completion per unit", bars, maximum=1.0,
                      fmt=lambda v: f"{v:.0%}",
                      lines=[Line(threshold, f"threshold {threshold:.0%}", TARGET)],
                      width=720, right=230,
                      description=f"Threshold {threshold:.0%}. {described}.")
    rows = []
    for (unit_id, module), cell in report.training.by_unit_module.items():
        median = "-" if cell.median_days is None else f"{cell.median_days:.1f}"
        shown = fmt_value(cell.share, "share")
        rows.append(f"<tr><td>{esc(unit_id)}</td><td>{esc(module)}</td>"
                    f"<td class=n>{cell.assigned}</td><td class=n>{cell.completed}</td>"
                    f"<td class=n>{shown}</td><td class=n>{cell.overdue}</td>"
                    f"<td class=n>{median}</td></tr>")
    return ['<section id="training"><h2>Training completion</h2>', chart,
            "<table>", _header("unit", "module", "n:assigned", "n:completed", "n:share",
                               "n:overdue", "n:median days to complete"),
            *rows, "</table></section>"]


def _adkar(report: Report) -> list[str]:
    program = report.program
    dims = report.feedback.dimensions
    bars = []
    for unit in program.units:
        fb = report.feedback.units.get(unit.id)
        if fb is None or not fb.averages:
            bars.append(Bar("no answers yet", None, "#ccc", "no answers yet", unit.title))
            continue
        for i, dim in enumerate(dims):
            value = fb.averages.get(dim)
            weakest = dim == fb.weakest
            text = "" if value is None else f"{value:.1f}" + ("  barrier" if weakest else "")
            bars.append(Bar(dim, value, DIM_COLORS[i % len(DIM_COLORS)], text or "no scores",
                            unit.title))
    barriers = "; ".join(
        f"{u.title}: barrier {fb.weakest}" for u in program.units
        if (fb := report.feedback.units.get(u.id)) is not None and fb.weakest)
    chart = bar_chart("chart-adkar", "ADKAR profile per unit (1-5)", bars, maximum=5.0,
                      fmt=lambda v: f"{v:.1f}", lines=[Line(3.0, "3 = neutral", BASELINE)],
                      row=18, label_width=150,
                      description=barriers or "No answers yet.")
    out = ['<section id="adkar"><h2>ADKAR profile per unit</h2>',
           "<p class=sub>Average score per dimension (1-5). The barrier point is the lowest "
           "dimension: the step where the change stalls.</p>", chart]
    out.append("<table>" + _header("unit", "n:responses", "n:from comments",
                                   "n:requests answered", "n:response rate", "barrier"))
    for unit in program.units:
        fb = report.feedback.units.get(unit.id)
        if fb is None:
            continue
        rate = fmt_value(fb.response_rate, "share")
        out.append(f"<tr><td>{esc(unit.title)}</td><td class=n>{fb.responses}</td>"
                   f"<td class=n>{fb.from_comments}</td><td class=n>{fb.answered}/{fb.requests}"
                   f"</td><td class=n>{rate}</td><td>{esc(fb.weakest or '-')}</td></tr>")
    out.append("</table></section>")
    return out


def _feedback_over_time(report: Report) -> list[str]:
    dims = report.feedback.dimensions
    out = ['<section id="feedback-time"><h2>Feedback over time</h2>',
           "<p class=sub>ADKAR averages per week (1-5). Each line is named where it ends and "
           "has its own marker and dash.</p><div class=grid>"]
    shown = 0
    for unit in report.program.units:
        fb = report.feedback.units.get(unit.id)
        if fb is None or not fb.weekly:
            continue
        shown += 1
        series = [Series(dim, DIM_COLORS[i % len(DIM_COLORS)],
                         [(float(w.toordinal()), s[dim]) for w, s in fb.weekly.items()
                          if dim in s], marker=MARKERS[i % len(MARKERS)],
                         dash=DIM_DASHES[i % len(DIM_DASHES)])
                  for i, dim in enumerate(dims)]
        latest = fb.weekly[max(fb.weekly)]
        described = ", ".join(f"{d} {latest[d]:.1f}" for d in dims if d in latest)
        chart = line_chart(f"chart-feedback-{slug(unit.id)}",
                           f"ADKAR scores per week: {unit.title}", series, y_range=(1.0, 5.0),
                           y_fmt=lambda v: f"{v:.0f}", x_fmt=_ord_fmt, y_ticks=4,
                           end_labels=True, width=420,
                           description=f"Latest week ({max(fb.weekly)}): {described}.")
        out.append(f"<div class=panel><h3>{esc(unit.title)}</h3>{chart}</div>")
    if not shown:
        out.append("<p class=sub>No feedback yet.</p>")
    out.append("</div></section>")
    return out


def _texts(report: Report) -> list[str]:
    out = ['<section id="texts"><h2>What people wrote</h2>',
           "<p class=sub>By unit, grouped by the dimension each person scored lowest.</p>"]
    any_text = False
    for unit_id, fb in report.feedback.units.items():
        if not fb.texts:
            continue
        any_text = True
        out.append(f"<h3>{esc(unit_id)}</h3>")
        for group, answers in fb.texts.items():
            out.append(f"<details><summary>lowest {esc(group)} ({len(answers)})</summary>")
            for answer in answers:
                where = f" on {esc(answer.ticket_id)}" if answer.ticket_id else ""
                scores = ", ".join(f"{esc(k)} {esc(v)}" for k, v in answer.scores.items())
                out.append(f"<blockquote>{esc(answer.text)}<div class=meta>"
                           f"{answer.submitted_at:%Y-%m-%d}, {esc(answer.source)}{where}; "
                           f"{scores}</div></blockquote>")
            out.append("</details>")
    if not any_text:
        out.append("<p class=sub>No free-text answers yet.</p>")
    out.append("</section>")
    return out


def _communications(report: Report) -> list[str]:
    out = ['<section id="communications"><h2>Communications delivered</h2>',
           "<table>" + _header("when", "event", "channel", "n:delivered",
                               "n:feedback requests answered")]
    for comm in report.communications:
        answered = f"{comm.answered}/{comm.requests}" if comm.requests else "-"
        out.append(f"<tr><td>{esc(comm.occurrence[:16].replace('T', ' '))}</td>"
                   f"<td>{esc(comm.title)}</td><td>{esc(comm.channel)}</td>"
                   f"<td class=n>{comm.delivered}</td><td class=n>{answered}</td></tr>")
    out.append("</table></section>")
    return out


def _prompts(report: Report) -> list[str]:
    out = ['<section id="prompts"><h2>Prompts in the ticket queue</h2>',
           "<p class=sub>Matching tickets that carried the prompt against those that did not "
           "(in its active window). A comparison, not an experiment.</p>",
           "<table>" + _header("prompt", "goal", "n:with prompt", "n:without")]
    for comparison in report.prompts:
        for row in comparison.goals:
            out.append(f"<tr><td>{esc(comparison.title)}</td><td>{esc(row.goal)}</td>"
                       f"<td class=n>{esc(fmt_value(row.with_value, row.unit_label))} "
                       f"({row.with_count})</td><td class=n>"
                       f"{esc(fmt_value(row.without_value, row.unit_label))} "
                       f"({row.without_count})</td></tr>")
    out.append("</table></section>")
    return out


def _gates(report: Report) -> list[str]:
    cards = []
    details = []
    for wave_id, gate in report.gates.items():
        wave = report.program.wave(wave_id)
        state = "open" if gate.open else "closed"
        failed = sum(not c.ok for c in gate.conditions)
        cards.append(f'<div class=card id="gate-{slug(wave_id)}"><div class=meta>'
                     f"{esc(wave.title)}</div><div class='big {state}'>gate {state}</div>"
                     f"<div class=meta>{len(gate.conditions) - failed} of "
                     f"{len(gate.conditions)} conditions met; starts {wave.starts}</div></div>")
        items = "".join(f"<li class={'ok' if c.ok else 'no'}>{'&#10003;' if c.ok else '&#10007;'}"
                        f" {esc(c.text)}</li>" for c in gate.conditions)
        notes = "".join(f"<li class=meta>{esc(n)}</li>" for n in gate.notes)
        details.append(f"<h3>{esc(wave_id)}: {state}</h3><ul class=conds>{items}{notes}</ul>")
    return ['<section id="gates"><h2>Wave gates</h2><div class=cards>', *cards, "</div>",
            *details, "</section>"]


def _silence(report: Report) -> list[str]:
    if not report.silent:
        return []
    items = "".join(
        f"<li>{esc(u.title)}: {u.days} days, "
        f"{esc(f'last message {u.last_message}' if u.last_message else 'no message since go-live')}"
        "</li>" for u in report.silent)
    return ['<section id="silence"><h2>Radio silence</h2>',
            f"<p>Live units without a message for more than {report.program.silence_days} "
            f"days:</p><ul>{items}</ul></section>"]


def render_html(report: Report) -> str:
    program = report.program
    head = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(program.title)}: adoption report</title><style>{CSS}</style></head>")
    notes = "".join(f"<p class=note>{esc(n)}</p>" for n in report.notes)
    intro = (f"<header><h1>{esc(program.title)}</h1><p class=sub>Adoption report as of "
             f"{report.as_of:%Y-%m-%d %H:%M} UTC, from {report.tickets_read} tickets. "
             f"{esc(program.description)}</p>{notes}</header>")
    body = [intro, *_verdict(report), *_gates(report), *_goals(report), *_training(report),
            *_adkar(report), *_feedback_over_time(report), *_texts(report),
            *_communications(report), *_prompts(report), *leaders_html(report.leaders),
            *_silence(report)]
    return head + "<body><main>" + "\n".join(body) + "</main></body></html>\n"
