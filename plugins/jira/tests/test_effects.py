"""Writes: training, communications, feedback requests and prompts against the fake site."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from helpers import note, training
from itsm_change_jira import adf

from itsm_change_sdk.errors import AuthenticationError, UnsupportedOperation
from itsm_change_sdk.model import EffectKind


@pytest.fixture
def people(double):
    return [double.add_person(f"Person {i}", f"p{i}@example.com") for i in range(120)]


class TestPublishTraining:
    def test_120_assignments_cost_three_bulk_calls(self, platform, double, people):
        effects = [training(p) for p in people]
        results = platform.itsm_change_publish_training(effects=effects, known={})
        assert [r.key for r in results] == [e.key for e in effects]
        assert all(r.ok for r in results)
        bulk = [r for r in double.requests_log if r[1] == "/rest/api/3/issue/bulk"]
        assert [len(b[2]["issueUpdates"]) for b in bulk] == [50, 50, 20]
        assert double.write_calls() == 3
        assert platform.api.transport.calls == 3
        records = double.records(EffectKind.TRAINING)
        assert {r.assignee for r in records} == {p.id for p in people}
        assert {r.key for r in records} == {e.key for e in effects}

    def test_issue_carries_label_property_adf_and_assignee(self, platform, double, people):
        effect = training(people[0], body="Read <b>this</b> & [link](x) https://ex.com/a")
        (result,) = platform.itsm_change_publish_training(effects=[effect], known={})
        issue = double.issues[result.ref.remote_id]
        fields = issue["fields"]
        assert fields["assignee"]["accountId"] == people[0].id
        assert all(" " not in label for label in fields["labels"])
        assert issue["properties"]["itsm-change"]["key"] == effect.key
        texts = [n for p in fields["description"]["content"] for n in p["content"]]
        assert texts[0] == {"type": "text", "text": "Read <b>this</b> & [link](x) "}
        assert texts[1]["marks"] == [{"type": "link", "attrs": {"href": "https://ex.com/a"}}]
        assert result.ref.url == f"https://acme.atlassian.net/browse/{issue['key']}"

    def test_partial_bulk_failure_maps_back_to_the_input(self, platform, double, people):
        ghost = people[1].__class__(id="557058:no-such-user", name="Ghost", platform="jira")
        effects = [training(people[0]), training(ghost), training(people[2])]
        results = platform.itsm_change_publish_training(effects=effects, known={})
        assert [r.ok for r in results] == [True, False, True]
        assert "does not exist" in results[1].error
        assert results[0].ref.remote_id != results[2].ref.remote_id

    def test_all_fail_400_gives_failed_results_not_an_exception(self, platform, double):
        ghost = double.add_person("x", "x@x").__class__(id="nobody", name="n", platform="jira")
        results = platform.itsm_change_publish_training(
            effects=[training(ghost), training(ghost, module="other")], known={})
        assert [r.ok for r in results] == [False, False]
        assert all("assignee" in r.error for r in results)

    def test_timeout_after_apply_does_not_duplicate(self, platform, double, people):
        effects = [training(p) for p in people[:5]]
        double.fail_next_write(after_apply=True)
        results = platform.itsm_change_publish_training(effects=effects, known={})
        assert all(r.ok for r in results)
        assert len(double.records(EffectKind.TRAINING)) == 5
        assert sum(1 for r in double.requests_log if r[1] == "/rest/api/3/issue/bulk") == 1

    def test_timeout_before_apply_sends_again(self, platform, double, people):
        double.fail_next_write(after_apply=False)
        results = platform.itsm_change_publish_training(
            effects=[training(p) for p in people[:3]], known={})
        assert all(r.ok for r in results)
        assert len(double.records(EffectKind.TRAINING)) == 3

    def test_known_key_is_updated_in_place(self, platform, double, people):
        effect = training(people[0])
        (first,) = platform.itsm_change_publish_training(effects=[effect], known={})
        changed = training(people[0], title="Training: portal basics (v2)")
        (second,) = platform.itsm_change_publish_training(
            effects=[changed], known={effect.key: first.ref})
        assert second.ref == first.ref
        (record,) = double.records(EffectKind.TRAINING)
        assert record.title == "Training: portal basics (v2)"

    def test_429_waits_for_retry_after(self, platform, double, people, sleeps):
        double.throttle_next("jira-burst-based")
        (result,) = platform.itsm_change_publish_training(effects=[training(people[0])],
                                                          known={})
        assert result.ok
        assert sleeps and sleeps[0] >= 2
        assert len(double.records(EffectKind.TRAINING)) == 1

    def test_refused_credentials_fail_the_call_without_the_token(self, platform, double, people):
        double.valid_credentials = False
        with pytest.raises(AuthenticationError) as info:
            platform.itsm_change_publish_training(effects=[training(people[0])], known={})
        assert "ATATT3xFfGF0-secret-token-value" not in str(info.value)
        assert "ATATT3xFfGF0-secret-token-value" not in repr(platform)
        assert len(double.requests_log) == 1


class TestStatusAndRetire:
    def test_completion_is_read_from_status_category(self, platform, double, people):
        results = platform.itsm_change_publish_training(
            effects=[training(p) for p in people[:2]], known={})
        done_at = datetime(2025, 6, 5, 12, 0, tzinfo=UTC)
        double.complete_task(results[0].ref, done_at)
        statuses = platform.itsm_change_training_status(refs=[r.ref for r in results])
        by_key = {s.key: s for s in statuses}
        assert by_key[results[0].key].completed
        assert by_key[results[0].key].completed_at == done_at
        assert not by_key[results[1].key].completed

    def test_retire_labels_and_closes_without_deleting(self, platform, double, people):
        (result,) = platform.itsm_change_publish_training(effects=[training(people[0])],
                                                          known={})
        (retired,) = platform.itsm_change_retire_effects(refs=[result.ref])
        assert retired.ok
        issue = double.issues[result.ref.remote_id]
        assert "itsm-change-retired" in issue["fields"]["labels"]
        assert issue["fields"]["status"]["statusCategory"]["key"] == "done"

    def test_retire_of_a_deleted_issue_counts_as_retired(self, platform, double, people):
        (result,) = platform.itsm_change_publish_training(effects=[training(people[0])],
                                                          known={})
        del double.issues[result.ref.remote_id]
        (retired,) = platform.itsm_change_retire_effects(refs=[result.ref])
        assert retired.ok


class TestFindEffects:
    def test_keys_are_found_in_one_query_per_fifty(self, platform, double, people):
        effects = [training(p) for p in people[:60]]
        platform.itsm_change_publish_training(effects=effects, known={})
        before = len(double.searches)
        refs = platform.itsm_change_find_effects(
            kind=EffectKind.TRAINING, keys=[e.key for e in effects] + ["chg:x:training:y:z"])
        assert {r.key for r in refs} == {e.key for e in effects}
        assert len(double.searches) - before == 2

    def test_hostile_key_cannot_widen_the_query(self, platform, double, people):
        double._new_issue("SECRET", {"summary": "payroll", "issuetype": {"name": "Task"},
                                     "labels": ["y"]})
        hostile = 'x" OR project = SECRET OR labels = "y'
        assert platform.itsm_change_find_effects(kind=EffectKind.TRAINING, keys=[hostile]) == []
        assert not any(key.startswith("SECRET-") for key in double.hits)

    def test_prompt_comment_found_by_token(self, make_platform, double):
        ticket = double.add_ticket(title="VPN", opened_at=datetime(2025, 6, 1, tzinfo=UTC))
        first = make_platform()
        (result,) = first.itsm_change_post_prompts(
            effects=[note(ticket.id, "chg:p:prompt:vpn:" + ticket.id)], known={})
        fresh = make_platform()
        refs = fresh.itsm_change_find_effects(kind=EffectKind.PROMPT,
                                              keys=["chg:p:prompt:vpn:" + ticket.id])
        assert refs == [result.ref]

    def test_note_outside_the_searched_projects_is_found_by_its_key(self, make_platform,
                                                                     double):
        issue = double._new_issue("SECRET", {"summary": "Cutover", "issuetype": {"name": "Task"}})
        key = f"chg:p:comm:kickoff:20250602T0900:jira:{issue['key']}"
        effect = note(issue["key"], key, kind=EffectKind.MESSAGE)
        (result,) = make_platform().itsm_change_deliver_communication(effects=[effect],
                                                                       known={})
        searches = len(double.searches)
        fresh = make_platform()
        refs = fresh.itsm_change_find_effects(kind=EffectKind.MESSAGE, keys=[key])
        assert refs == [result.ref], "a lost answer must not lead to a second note"
        assert not [s for s in double.searches[searches:] if "comment ~" in s], \
            "the key names the issue: no text search needed"

    def test_announcement_is_found_on_the_announcement_issue(self, make_platform, double):
        issue = double._new_issue("OPS", {"summary": "News", "issuetype": {"name": "Task"}})
        effect = note("", "chg:p:comm:kickoff:20250602T0900:jira", kind=EffectKind.MESSAGE,
                      channel="announcement")
        platform = make_platform(announcement_issue=issue["key"])
        (result,) = platform.itsm_change_deliver_communication(effects=[effect], known={})
        searches = len(double.searches)
        fresh = make_platform(announcement_issue=issue["key"])
        refs = fresh.itsm_change_find_effects(kind=EffectKind.MESSAGE, keys=[effect.key])
        assert refs == [result.ref]
        assert not [s for s in double.searches[searches:] if "comment ~" in s]


class TestComments:
    def test_prompt_on_jsm_request_is_one_internal_comment_carrying_its_key(
            self, platform, double):
        ticket = double.add_ticket(title="VPN", opened_at=datetime(2025, 6, 1, tzinfo=UTC))
        effect = note(ticket.id, "chg:p:prompt:vpn:1", body="Use *the* portal <script>")
        start = len(double.requests_log)
        (result,) = platform.itsm_change_post_prompts(effects=[effect], known={})
        assert result.ok
        sent = double.requests_log[start:]
        writes = [(m, p, b) for m, p, b in sent if m != "GET"]  # the GET: the project type
        assert [(m, p) for m, p, _ in writes] == [
            ("POST", f"/rest/api/3/issue/{ticket.id}/comment")]
        props = {p["key"]: p["value"] for p in writes[0][2]["properties"]}
        assert props["sd.public.comment"] == {"internal": True}
        comment = double.issues[ticket.id]["comments"][0]
        assert comment["jsdPublic"] is False
        assert adf.to_plain_text(comment["body"]).startswith("Use *the* portal <script>")
        assert comment["properties"]["itsm-change"]["key"] == effect.key

    def test_public_comment_on_jsm_request_is_public(self, platform, double):
        ticket = double.add_ticket(title="VPN", opened_at=datetime(2025, 6, 1, tzinfo=UTC))
        effect = note(ticket.id, "chg:p:message:vpn:1", kind=EffectKind.MESSAGE,
                      channel="public_comment")
        (result,) = platform.itsm_change_deliver_communication(effects=[effect], known={})
        assert result.ok
        assert double.issues[ticket.id]["comments"][0]["jsdPublic"] is True

    def test_a_batch_of_comments_goes_out_side_by_side(self, make_platform, double):
        """Jira has no bulk comment call: a batch keeps several comments in flight."""
        platform = make_platform(write_concurrency="4")
        tickets = [double.add_ticket(title=f"VPN {i}", opened_at=datetime(2025, 6, 1, tzinfo=UTC))
                   for i in range(8)]
        in_flight = peak = 0
        lock = threading.Lock()
        # Four comments must be in flight together to pass; fewer would time out here.
        together = threading.Barrier(4, timeout=10)
        send = platform.api.add_comment

        def slow(key: str, payload: Any) -> Any:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            together.wait()
            try:
                return send(key, payload)
            finally:
                with lock:
                    in_flight -= 1

        platform.api.add_comment = slow
        effects = [note(t.id, f"chg:p:prompt:vpn:{t.id}") for t in tickets]
        results = platform.itsm_change_post_prompts(effects=effects, known={})
        assert [r.key for r in results] == [e.key for e in effects] and all(r.ok for r in results)
        assert peak == 4
        assert all(len(double.issues[t.id]["comments"]) == 1 for t in tickets)

    def test_known_prompts_are_skipped(self, platform, double):
        ticket = double.add_ticket(title="VPN", opened_at=datetime(2025, 6, 1, tzinfo=UTC))
        effect = note(ticket.id, "chg:p:prompt:vpn:1")
        (first,) = platform.itsm_change_post_prompts(effects=[effect], known={})
        writes = double.write_calls()
        (again,) = platform.itsm_change_post_prompts(effects=[effect],
                                                     known={effect.key: first.ref})
        assert again.ok and again.ref == first.ref
        assert double.write_calls() == writes

    def test_note_on_software_issue_is_adf_with_role_visibility(self, make_platform, double):
        platform = make_platform(internal_role="Developers")
        issue = double._new_issue("OPS", {"summary": "Tracking", "issuetype": {"name": "Task"}})
        effect = note(issue["key"], "chg:p:message:kickoff", kind=EffectKind.MESSAGE)
        (result,) = platform.itsm_change_deliver_communication(effects=[effect], known={})
        assert result.ok
        comment = issue["comments"][0]
        assert comment["body"]["type"] == "doc"
        assert comment["visibility"] == {"type": "role", "value": "Developers"}

    def test_comment_timeout_after_apply_is_not_posted_twice(self, platform, double):
        ticket = double.add_ticket(title="VPN", opened_at=datetime(2025, 6, 1, tzinfo=UTC))
        double.fail_next_write(after_apply=True)
        (result,) = platform.itsm_change_post_prompts(
            effects=[note(ticket.id, "chg:p:prompt:vpn:1")], known={})
        assert result.ok
        assert len(double.issues[ticket.id]["comments"]) == 1

    def test_announcement_without_an_issue_is_unsupported(self, platform):
        effect = note("OPS-1", "chg:p:message:a", kind=EffectKind.MESSAGE,
                      channel="announcement")
        with pytest.raises(UnsupportedOperation):
            platform.itsm_change_deliver_communication(effects=[effect], known={})

    def test_announcement_comment_is_updated_in_place(self, make_platform, double):
        issue = double._new_issue("OPS", {"summary": "News", "issuetype": {"name": "Task"}})
        platform = make_platform(announcement_issue=issue["key"])
        effect = note("", "chg:p:message:a", kind=EffectKind.MESSAGE, channel="announcement")
        effect = effect.__class__(**{**effect.__dict__, "audience_groups": ("service-desk",)})
        (first,) = platform.itsm_change_deliver_communication(effects=[effect], known={})
        changed = effect.__class__(**{**effect.__dict__, "body": "Go-live moved to Monday."})
        (second,) = platform.itsm_change_deliver_communication(
            effects=[changed], known={effect.key: first.ref})
        assert second.ref == first.ref
        (comment,) = issue["comments"]
        assert comment["visibility"] == {"type": "group", "value": "service-desk"}
        assert "Go-live moved to Monday." in str(comment["body"])

    def test_a_deleted_note_is_posted_again(self, platform, double):
        issue = double._new_issue("OPS", {"summary": "Cutover", "issuetype": {"name": "Task"}})
        effect = note(issue["key"], f"chg:p:comm:kickoff:1:{issue['key']}",
                      kind=EffectKind.MESSAGE)
        (first,) = platform.itsm_change_deliver_communication(effects=[effect], known={})
        issue["comments"].clear()
        (again,) = platform.itsm_change_deliver_communication(
            effects=[effect], known={effect.key: first.ref})
        assert again.ok and again.ref != first.ref
        assert [r.key for r in double.records(EffectKind.MESSAGE)] == [effect.key]

    def test_task_channel_creates_an_issue(self, platform, double, people):
        effect = training(people[0], kind=EffectKind.MESSAGE, key="chg:p:message:ack:1")
        (result,) = platform.itsm_change_deliver_communication(effects=[effect], known={})
        assert result.ok
        assert [r.key for r in double.records(EffectKind.MESSAGE)] == [effect.key]

    def test_feedback_request_is_an_issue_for_the_person(self, platform, double, people):
        effect = training(people[3], kind=EffectKind.FEEDBACK_REQUEST,
                          key="chg:p:feedback_request:pulse:1")
        (result,) = platform.itsm_change_request_feedback(effects=[effect], known={})
        assert result.ok
        (record,) = double.records(EffectKind.FEEDBACK_REQUEST)
        assert record.assignee == people[3].id

    def test_per_issue_writes_are_paced(self, platform, double, sleeps):
        ticket = double.add_ticket(title="Busy", opened_at=datetime(2025, 6, 1, tzinfo=UTC))
        effects = [note(ticket.id, f"chg:p:prompt:{i}:{ticket.id}") for i in range(21)]
        results = platform.itsm_change_post_prompts(effects=effects, known={})
        assert all(r.ok for r in results)
        assert sleeps, "21 writes to one issue must wait for the 20-per-2s window"
