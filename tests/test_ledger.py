"""The ledger on SQLite and on PostgreSQL: claims, results, events, feedback, cursors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from itsm_change_sdk.errors import ConfigurationError
from itsm_change_sdk.ledger import LEASE, Ledger
from itsm_change_sdk.model import (
    Effect,
    EffectKind,
    EffectRef,
    EffectResult,
    FeedbackResponse,
    Person,
    TicketEvent,
    TicketEventKind,
)

NOW = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)


def effect(key: str = "chg:p:training:m:sandbox:u-1", title: str = "Training") -> Effect:
    return Effect(key=key, kind=EffectKind.TRAINING, platform="sandbox", program="p",
                  title=title, body="body", channel="task",
                  recipient=Person("u-1", "Ann", "sandbox"), meta={"unit": "sd"})


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    led = Ledger(url)
    yield led
    led.close()


class TestClaims:
    def test_first_claim_wins_a_live_second_loses(self, ledger):
        assert ledger.claim(effect(), NOW)
        other = Ledger(ledger.url)
        try:
            assert not other.claim(effect(), NOW + timedelta(seconds=1))
        finally:
            other.close()

    def test_an_expired_lease_can_be_claimed_again(self, ledger):
        ledger.claim(effect(), NOW)
        seen = ledger.get(effect().key)
        assert not ledger.claim(effect(), NOW + timedelta(seconds=1), seen), "lease still live"
        assert ledger.claim(effect(), NOW + LEASE + timedelta(seconds=1), seen)
        assert ledger.get(effect().key).attempts == 2

    def test_two_processes_that_planned_the_same_write_send_it_once(self, ledger):
        e = effect()
        ledger.claim(e, NOW)
        ledger.record_result(e, EffectResult(e.key, True, EffectRef(e.key, "sandbox", "T1")),
                             NOW)
        assert not ledger.claim(e, NOW), "a create planned before the row existed"
        done = ledger.get(e.key)
        changed = effect(title="Training v2")
        assert ledger.claim(changed, NOW, done), "an update of the version seen"
        ledger.record_result(changed, EffectResult(e.key, True, done.ref), NOW)
        assert not ledger.claim(changed, NOW, done), "the version seen has moved on"

    def test_result_records_ref_and_fingerprint(self, ledger):
        e = effect()
        ledger.claim(e, NOW)
        ledger.record_result(e, EffectResult(e.key, True, EffectRef(e.key, "sandbox", "TRN1")),
                             NOW)
        row = ledger.get(e.key)
        assert (row.state, row.remote_id, row.fingerprint) == ("done", "TRN1", e.fingerprint)
        assert row.meta == {"unit": "sd"} and row.lease_until is None

    def test_uncertain_result_stays_pending_for_lookup(self, ledger):
        e = effect()
        ledger.claim(e, NOW)
        ledger.record_result(e, EffectResult(e.key, False, error="timeout", uncertain=True), NOW)
        row = ledger.get(e.key)
        assert row.state == "pending" and row.lease_until is None
        assert ledger.claim(e, NOW, row)

    def test_failed_update_keeps_the_earlier_success(self, ledger):
        e = effect()
        ledger.claim(e, NOW)
        ledger.record_result(e, EffectResult(e.key, True, EffectRef(e.key, "sandbox", "T1")), NOW)
        changed = effect(title="Training v2")
        assert ledger.claim(changed, NOW, ledger.get(e.key))
        ledger.record_result(changed, EffectResult(e.key, False, error="400 bad due"), NOW)
        row = ledger.get(e.key)
        assert row.state == "done" and row.remote_id == "T1" and row.last_error == "400 bad due"
        assert row.fingerprint == e.fingerprint, "the platform still shows the old version"

    def test_found_after_a_crash_is_done_with_the_intended_fingerprint(self, ledger):
        e = effect()
        ledger.claim(e, NOW)
        ledger.record_found(EffectRef(e.key, "sandbox", "T9"), NOW)
        row = ledger.get(e.key)
        assert (row.state, row.remote_id, row.fingerprint) == ("done", "T9", e.fingerprint)

    def test_completion_changes_once(self, ledger):
        e = effect()
        ledger.claim(e, NOW)
        assert ledger.set_completed(e.key, True, NOW)
        assert not ledger.set_completed(e.key, True, NOW)
        assert ledger.set_completed(e.key, False, NOW)
        assert ledger.get(e.key).completed_at is None


class TestEventsFeedbackCursors:
    def test_redelivered_event_is_recorded_once(self, ledger):
        event = TicketEvent("jira", "wh-1", TicketEventKind.TICKET_CREATED, NOW, ticket_id="1")
        first = ledger.add_event(event, "{}", NOW)
        assert first is not None
        assert ledger.add_event(event, "{}", NOW) is None
        claimed = ledger.claim_events(now=NOW)
        assert [e.id for e in claimed] == [first]
        assert ledger.claim_events(now=NOW) == [], "a claimed event is not handed out twice"
        ledger.finish_events([first], now=NOW)
        assert ledger.event_counts() == {"received": 1, "processed": 1, "dead": 0}

    def test_two_programs_each_process_their_own_copy_of_an_event(self, ledger):
        event = TicketEvent("jira", "wh-3", TicketEventKind.COMMENT_ADDED, NOW, ticket_id="3")
        assert ledger.add_event(event, "{}", NOW, "portal") is not None
        assert ledger.add_event(event, "{}", NOW, "approvals") is not None
        assert ledger.add_event(event, "{}", NOW, "portal") is None
        assert [r.program for r in ledger.claim_events(now=NOW, program="portal")] == ["portal"]
        assert [r.program for r in ledger.claim_events(now=NOW, program="approvals")] == \
            ["approvals"]
        assert ledger.event_counts("portal") == {"received": 1, "processed": 0, "dead": 0}

    def test_a_failed_event_waits_for_its_retry_time(self, ledger):
        event = TicketEvent("jira", "wh-2", TicketEventKind.TICKET_UPDATED, NOW, ticket_id="2")
        (fresh,) = ledger.add_events([(event, "{}")], NOW)
        assert fresh and ledger.add_events([(event, "{}")], NOW) == [False]
        (row,) = ledger.claim_events(now=NOW)
        ledger.fail_event(row.id, "NotFound: gone", NOW + timedelta(minutes=1))
        assert ledger.claim_events(now=NOW + timedelta(seconds=30)) == []
        (again,) = ledger.claim_events(now=NOW + timedelta(minutes=2))
        assert again.error == "NotFound: gone" and again.attempts == 2

    def test_feedback_is_captured_once_and_read_back(self, ledger):
        response = FeedbackResponse("comment:N1", "sandbox", "p", "u-1", NOW,
                                    {"ability": 2}, "slow form", "comment", unit="sd")
        assert ledger.add_feedback(response)
        assert not ledger.add_feedback(response)
        (back,) = list(ledger.feedback("p"))
        assert back == response

    def test_sign_off_once(self, ledger):
        assert ledger.sign_off("p", "wave-2", "dana", "ready", NOW)
        assert not ledger.sign_off("p", "wave-2", "dana", "again", NOW)
        assert [s.member for s in ledger.signoffs("p")] == ["dana"]

    def test_cursor_round_trip(self, ledger):
        assert ledger.cursor("p:feedback:sandbox") is None
        ledger.set_cursor("p:feedback:sandbox", "2027-01-12T09:00:00+00:00", NOW)
        ledger.set_cursor("p:feedback:sandbox", "2027-01-13T09:00:00+00:00", NOW)
        assert ledger.cursor("p:feedback:sandbox") == "2027-01-13T09:00:00+00:00"

    def test_datetimes_come_back_aware_utc(self, ledger):
        e = effect()
        ledger.claim(e, NOW)
        assert ledger.get(e.key).created_at == NOW


def test_unreachable_database_is_a_clear_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot be reached"):
        Ledger("postgresql+psycopg://nobody:secretpw@127.0.0.1:1/none")


def test_password_in_the_url_is_not_shown(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        Ledger("postgresql+psycopg://nobody:secretpw@127.0.0.1:1/none")
    assert "secretpw" not in str(info.value)


class TestBatches:
    def test_a_batch_claims_only_what_no_one_else_holds(self, ledger):
        held = effect("k:held")
        ledger.claim(held, NOW)
        batch = [effect(f"k:{i}") for i in range(5)] + [held]
        won = ledger.claim_many([(e, None) for e in batch], NOW + timedelta(seconds=1))
        assert [e.key for e in won] == [f"k:{i}" for i in range(5)]
        assert ledger.get("k:held").attempts == 1, "the other holder's claim is untouched"

    def test_a_batch_of_results_is_recorded_together(self, ledger):
        batch = [effect(f"k:{i}") for i in range(3)]
        ledger.claim_many([(e, None) for e in batch], NOW)
        ledger.record_results([
            (batch[0], EffectResult("k:0", True, EffectRef("k:0", "sandbox", "T1", None))),
            (batch[1], EffectResult("k:1", False, error="timeout", uncertain=True)),
            (batch[2], EffectResult("k:2", False, error="400 bad field")),
        ], NOW)
        states = {r.key: (r.state, r.remote_id, r.lease_until) for r in ledger.effects("p")}
        assert states == {"k:0": ("done", "T1", None), "k:1": ("pending", None, None),
                          "k:2": ("failed", None, None)}

    def test_threads_sharing_a_ledger_never_trip_over_the_file(self, ledger):
        """Sixteen workers and a second process's ledger write at once: every claim and
        result lands, none is refused for a locked database."""
        other = Ledger(ledger.url)

        def work(worker: int) -> int:
            target = other if worker % 4 == 0 else ledger
            batch = [effect(f"w{worker}:{i}") for i in range(40)]
            won = target.claim_many([(e, None) for e in batch], NOW)
            target.record_results([(e, EffectResult(e.key, True, EffectRef(
                e.key, "sandbox", f"R{e.key}", None))) for e in won], NOW)
            return len(won)

        try:
            with ThreadPoolExecutor(max_workers=16) as pool:
                assert sum(pool.map(work, range(16))) == 16 * 40
        finally:
            other.close()
        assert {r.state for r in ledger.effects("p")} == {"done"}
        assert len(ledger.effects("p")) == 16 * 40


class TestReadingAtScale:
    def prompt(self, ticket: str) -> Effect:
        return Effect(key=f"chg:p:prompt:reset:sandbox:{ticket}", kind=EffectKind.PROMPT,
                      platform="sandbox", program="p", title="Reset", body="Use the portal",
                      channel="ticket_note", ticket_id=ticket, meta={"prompt": "reset"})

    def test_planning_reads_what_it_diffs_and_leaves_prompts_to_sync(self, ledger):
        training = effect()
        ledger.claim(training, NOW)
        ledger.record_result(training, EffectResult(training.key, True, EffectRef(
            training.key, "sandbox", "T1", "https://x/T1")), NOW)
        for ticket in ("INC1", "INC2"):
            ledger.claim(self.prompt(ticket), NOW)
        rows = ledger.plan_rows("p")
        assert list(rows) == [training.key]
        row = rows[training.key]
        assert (row.state, row.fingerprint, row.recipient, dict(row.meta)) == (
            "done", training.fingerprint, "u-1", {"unit": "sd"})
        assert row.ref == EffectRef(training.key, "sandbox", "T1", "https://x/T1")

    def test_status_counts_come_from_the_database(self, ledger):
        done, failed, open_ = effect("k:done"), effect("k:failed"), effect("k:open")
        for e in (done, failed, open_):
            ledger.claim(e, NOW)
        ledger.record_results([
            (done, EffectResult(done.key, True, EffectRef(done.key, "sandbox", "T1", None))),
            (failed, EffectResult(failed.key, False, error="400 no such user")),
        ], NOW)
        ledger.set_completed("k:done", True, NOW)
        for ticket in ("INC1", "INC2", "INC3"):
            ledger.claim(self.prompt(ticket), NOW)
        prompted = self.prompt("INC1")
        ledger.record_result(prompted, EffectResult(prompted.key, True), NOW)
        counts = ledger.effect_counts("p")
        assert counts.by_state == {("training", "done"): 1, ("training", "failed"): 1,
                                   ("training", "pending"): 1, ("prompt", "done"): 1,
                                   ("prompt", "pending"): 2}
        assert (counts.training_assigned, counts.training_completed) == (1, 1)
        assert counts.prompts == {"reset": (3, 1)}
        assert counts.failed == [("k:failed", "400 no such user")]
