"""Goal metrics against hand-computed expectations on a dozen tickets."""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from itsm_change_sdk.hookspecs import hookimpl
from itsm_change_sdk.metrics import Share, builtin_metric_kinds, compute_goals, week_start
from itsm_change_sdk.model import Goal, Program, Ticket, TicketFilter, Unit, Wave
from itsm_change_sdk.plugins import get_plugin_manager, metric_registry

KINDS = {k.name: k for k in builtin_metric_kinds()}
INCIDENTS = TicketFilter(kinds=("incident",))


AS_OF = datetime(2027, 2, 1, tzinfo=UTC)
"""After every ticket below opened; T3 and T8 are still open then."""


def make_program(*goals: Goal, min_sample: int = 1) -> Program:
    # Pilot starts Mon 2027-01-11, goes live Mon 2027-01-18; wave-2 goes live 2027-03-08.
    return Program(min_sample=min_sample,
        id="p", title="P", platforms=("sandbox",), goals=goals,
        waves=(Wave("pilot", "Pilot", date(2027, 1, 11), date(2027, 1, 18)),
               Wave("wave-2", "Wave 2", date(2027, 3, 1), date(2027, 3, 8))),
        units=(Unit("u1", "Desk", "pilot", "sandbox", group="Desk"),
               Unit("u2", "Field", "wave-2", "sandbox", group="Field")),
        alliance=(), training=(), communications=(), surveys=(), prompts=())


def goal(metric: str, **params: str) -> Goal:
    return Goal(metric, metric, metric, baseline=0.2, target=0.5, filter=INCIDENTS,
                params=params)


def tk(n: int, day: int, channel: str, hours: float | None = None, *, month: int = 1,
       group: str = "Desk", kind: str = "incident", reopen: int | None = 0,
       reassign: int | None = 0) -> Ticket:
    opened = datetime(2027, month, day, 9, tzinfo=UTC)
    resolved = opened + timedelta(hours=hours) if hours is not None else None
    return Ticket("sandbox", f"T{n}", f"T{n}", "t", kind, "resolved" if resolved else "open",
                  opened, resolved or opened, resolved, group=group, channel=channel,
                  reopen_count=reopen, reassignment_count=reassign)


# Unit u1 ("Desk"); windows: before < 01-11 <= training week < 01-18 <= current.
TICKETS = [
    tk(1, 4, "email", 10),            # before
    tk(2, 5, "portal", 20),           # before
    tk(3, 6, "phone"),                # before, open
    tk(4, 7, "email", 1, kind="request"),  # not an incident: filtered out everywhere
    tk(9, 12, "portal", 2),           # training week: weekly trend only
    tk(5, 18, "portal", 4),           # current, first contact
    tk(6, 19, "portal", 6, reopen=1),     # current, reopened
    tk(7, 20, "email", 8, reassign=1),    # current, reassigned
    tk(8, 26, "portal"),              # current, open
    tk(10, 18, "portal", 1, group="Nowhere"),  # no unit: ignored
    tk(11, 27, "portal", 2, group="desk"),     # group matched case-insensitively
    tk(12, 5, "email", 5, group="Field"),      # u2, before its wave
]


def results_for(metric: str, **params: str) -> dict[str, object]:
    [result] = compute_goals(make_program(goal(metric, **params)), iter(TICKETS), KINDS, AS_OF)
    return dict(result.units)


class TestChannelShare:
    def test_current_before_and_weekly(self):
        """Before: T1-T3, portal T2 -> 1/3. Current: T5-T8, T11, portal T5 T6 T8 T11 -> 4/5.
        Weeks: 01-04 {T1,T2,T3} 1/3; 01-11 {T9} 1; 01-18 {T5,T6,T7} 2/3; 01-25 {T8,T11} 1."""
        u1 = results_for("channel_share", channel="portal")["u1"]
        assert u1.before == pytest.approx(1 / 3) and u1.before_count == 3
        assert u1.current == pytest.approx(0.8) and u1.current_count == 5
        assert u1.weekly == pytest.approx({date(2027, 1, 4): 1 / 3, date(2027, 1, 11): 1.0,
                                           date(2027, 1, 18): 2 / 3, date(2027, 1, 25): 1.0})
        assert u1.weekly_counts == {date(2027, 1, 4): 3, date(2027, 1, 11): 1,
                                    date(2027, 1, 18): 3, date(2027, 1, 25): 2}
        assert u1.met and u1.progress == pytest.approx((0.8 - 0.2) / (0.5 - 0.2))

    def test_unit_not_live_has_no_current(self):
        """u2: T12 (email) before its wave -> 0/1; nothing since its go-live."""
        u2 = results_for("channel_share", channel="portal")["u2"]
        assert u2.before == 0.0 and u2.current is None and not u2.met

    def test_channel_is_matched_case_insensitively(self):
        program = make_program(goal("channel_share", channel="Portal"))
        [result] = compute_goals(program, [tk(1, 18, "PORTAL"), tk(2, 18, "email")], KINDS,
                                 AS_OF)
        assert result.units["u1"].current == 0.5


class TestResolutionMetrics:
    def test_mean_time_to_resolve_is_unknown_while_a_ticket_is_open(self):
        """Current: T5 4h, T6 6h, T7 8h, T11 2h resolved, T8 open. A mean over the four
        resolved (5h) would leave T8 out, so the mean is unknown, saying why."""
        u1 = results_for("mean_time_to_resolve")["u1"]
        assert u1.current is None and u1.current_count == 4
        assert u1.unknown is not None and u1.unknown.startswith("1 of 5 tickets still open")
        assert not u1.met and u1.status == "unknown"

    def test_mean_time_to_resolve_when_every_ticket_is_resolved(self):
        """T1 10h, T2 20h (u1, before its wave), nothing open -> 15h."""
        program = make_program(goal("mean_time_to_resolve"))
        [result] = compute_goals(program, [TICKETS[0], TICKETS[1]], KINDS, AS_OF)
        assert result.units["u1"].before == pytest.approx(15.0)

    def test_median_counts_open_tickets_as_censored(self):
        """Current: 2h, 4h, 6h, 8h resolved, T8 open for 135h at 02-01 00:00 (n=5).
        Kaplan-Meier: after 2h 4/5 = 0.8 open; after 4h 0.8 x 3/4 = 0.6; after 6h
        0.6 x 2/3 = 0.4 <= 0.5 -> median 6h (the mean over resolved ones says 5h)."""
        u1 = results_for("median_time_to_resolve")["u1"]
        assert u1.current == pytest.approx(6.0) and u1.current_count == 5
        assert u1.unknown is None

    def test_short_tickets_alone_do_not_make_a_goal_met(self):
        """Ten days after go-live, 2 of 10 tickets resolved in 30h, 8 open for 240h. The
        share still open never falls to half (0.8 after 30h): the median is unknown, and
        the goal (target 500h) is not met, although the resolved ones took 30h."""
        tickets = [tk(n, 18, "portal", 30 if n < 2 else None) for n in range(10)]
        program = make_program(Goal("mttr", "t", "median_time_to_resolve", 1162, 500))
        as_of = datetime(2027, 1, 28, 9, tzinfo=UTC)
        [result] = compute_goals(program, tickets, KINDS, as_of)
        u1 = result.units["u1"]
        assert u1.current is None and not u1.met
        assert u1.unknown == ("fewer than half of 10 tickets are known to be resolved: 8 still "
                              "open (the oldest for 240h), so the median is not known yet")

    def test_first_contact_resolution(self):
        """Current resolved: T5 yes, T6 reopened, T7 reassigned, T11 yes -> 2/4."""
        assert results_for("first_contact_resolution")["u1"].current == 0.5

    def test_first_contact_resolution_unknown_without_the_counts(self):
        """A platform that does not report reassignments leaves the counts at None: the
        share is unknown, not 100%."""
        tickets = [tk(n, 18 + n, "portal", 3, reopen=None, reassign=None) for n in range(4)]
        program = make_program(goal("first_contact_resolution"))
        [result] = compute_goals(program, tickets, KINDS, AS_OF)
        u1 = result.units["u1"]
        assert u1.current is None and not u1.met
        assert u1.unknown == ("the platform does not report reassignments or reopenings for "
                              "4 resolved ticket(s)")

    def test_reopen_rate(self):
        """Current resolved: only T6 was reopened -> 1/4."""
        assert results_for("reopen_rate")["u1"].current == 0.25

    def test_lower_is_better_goal_is_met_at_or_below_target(self):
        """Median 6h (see above) against a 6h target."""
        program = make_program(Goal("mttr", "t", "median_time_to_resolve", 30, 6,
                                    filter=INCIDENTS))
        [result] = compute_goals(program, TICKETS, KINDS, AS_OF)
        assert result.units["u1"].met
        assert result.units["u1"].progress == pytest.approx(1.0)


class TestUnknownAndAsOf:
    def test_too_few_tickets_is_unknown_with_the_sample_in_the_reason(self):
        """Portal share 4/5 is past the 0.5 target, but 5 tickets < min_sample 10."""
        program = make_program(goal("channel_share", channel="portal"), min_sample=10)
        [result] = compute_goals(program, TICKETS, KINDS, AS_OF)
        u1 = result.units["u1"]
        assert u1.current == pytest.approx(0.8) and not u1.met
        assert u1.unknown == "only 5 ticket(s) since go-live; at least 10 needed (min_sample)"

    def test_unit_before_go_live_is_not_live_yet(self):
        u2 = results_for("channel_share", channel="portal")["u2"]
        assert not u2.live and u2.status == "not live yet" and not u2.met

    def test_as_of_shows_only_tickets_known_then(self):
        """At 01-20 00:00: T5 (01-18, 4h) and T6 (01-19, 6h) are resolved; T7 opened on
        01-20 09:00, later: left out. Portal share 2/2. Resolved later means open then."""
        as_of = datetime(2027, 1, 20, tzinfo=UTC)
        program = make_program(goal("channel_share", channel="portal"),
                               goal("median_time_to_resolve"))
        share, _ = compute_goals(program, TICKETS, KINDS, as_of)
        assert share.units["u1"].current == 1.0 and share.units["u1"].current_count == 2
        late = tk(20, 19, "portal", 100)  # resolved 01-23: still open at 01-20 00:00
        [median] = compute_goals(make_program(goal("median_time_to_resolve")),
                                 [TICKETS[5], late], KINDS, as_of)
        # n=2: T5 resolved at 4h -> 1/2 open -> median 4h; the late one counts as open.
        assert median.units["u1"].current == pytest.approx(4.0)
        assert median.units["u1"].current_count == 2


def test_goal_limited_to_some_units():
    program = make_program(Goal("g", "t", "channel_share", 0.2, 0.5, units=("u2",)))
    [result] = compute_goals(program, TICKETS, KINDS, AS_OF)
    assert list(result.units) == ["u2"]


def test_week_start_is_monday():
    assert week_start(date(2027, 1, 24)) == date(2027, 1, 18)  # a Sunday
    assert week_start(date(2027, 1, 18)) == date(2027, 1, 18)


def test_stream_is_read_once_and_no_ticket_is_kept():
    """The engine keeps accumulators, never tickets: every ticket is freed after the pass."""
    refs: list[weakref.ref[Ticket]] = []

    def stream():
        for n in range(2000):
            ticket = tk(n, 18 + n % 10, "portal" if n % 4 else "email", 3)
            refs.append(weakref.ref(ticket))
            yield ticket

    [result] = compute_goals(make_program(goal("channel_share", channel="portal")), stream(),
                             KINDS, AS_OF)
    gc.collect()
    assert result.units["u1"].current == pytest.approx(0.75)
    assert sum(r() is not None for r in refs) == 0


@dataclass(frozen=True)
class PriorityOneShare:
    name: str = "p1_share"
    title: str = "Share of priority 1"
    unit_label: str = "share"

    def accumulator(self, params):
        return Share(lambda t: t.priority == "1")


class KindPlugin:
    @hookimpl
    def itsm_change_register_metric_kinds(self, register):
        register.add(PriorityOneShare())


def test_metric_kinds_are_pluggable():
    pm = get_plugin_manager(load_entry_points=False)
    pm.register(KindPlugin())
    kinds = metric_registry(pm).kinds
    assert {"channel_share", "mean_time_to_resolve", "first_contact_resolution",
            "reopen_rate", "p1_share"} <= set(kinds)
    tickets = [tk(1, 18, "portal"), tk(2, 19, "portal")]
    object.__setattr__(tickets[0], "priority", "1")
    [result] = compute_goals(make_program(Goal("g", "t", "p1_share", 0.0, 1.0)), tickets, kinds,
                             AS_OF)
    assert result.units["u1"].current == 0.5


def test_a_filter_matching_no_ticket_is_unknown_with_the_reason():
    """People write the label they see ("Inquiry / Help"); the platform stores "inquiry".
    The unit has 10 incidents, none in that category: unknown, never "met"."""
    flt = TicketFilter(kinds=("incident",), categories=("Inquiry / Help",))
    program = make_program(Goal("g", "t", "channel_share", 0.9, 0.1, filter=flt))
    tickets = [tk(n, 18, "portal") for n in range(10)]
    [result] = compute_goals(program, tickets, KINDS, AS_OF)
    u1 = result.units["u1"]
    assert u1.current is None and not u1.met and u1.status == "unknown"
    assert u1.unknown == ("none of the unit's 10 tickets match the goal's filter (kinds: "
                          "incident; categories: Inquiry / Help); check the values the "
                          "platform stores")
