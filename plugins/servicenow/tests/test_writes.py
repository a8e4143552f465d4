"""Training tasks, communications, prompts: batched, updated in place, never duplicated."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime

import pytest
from itsm_change_servicenow import ServiceNowPlatform
from itsm_change_servicenow.client import announcement_sys_id

from itsm_change_sdk.errors import ConfigurationError, UnsupportedOperation
from itsm_change_sdk.model import Effect, EffectKind


def training(person, module="portal-basics", title="Portal basics", due=date(2025, 3, 10)):
    return Effect(key=f"chg:portal:training:{module}:{person.id}", kind=EffectKind.TRAINING,
                  platform="servicenow", program="portal", title=title,
                  body="Watch the 20-minute course, then close this task.", channel="task",
                  recipient=person, due=due)


def people(double, n):
    return [double.add_person(f"Person {i}", f"p{i}@example.com") for i in range(n)]


class TestPublishTraining:
    def test_120_assignments_cost_two_batch_calls(self, platform, double):
        effects = [training(p) for p in people(double, 120)]
        before = platform.transport.calls

        results = platform.itsm_change_publish_training(effects, {})

        assert all(r.ok for r in results)
        assert [r.key for r in results] == [e.key for e in effects]
        assert platform.transport.calls - before == 2  # 100 sub-requests a call
        assert double.write_calls() == 2
        tasks = double.records(EffectKind.TRAINING)
        assert len(tasks) == 120
        first = next(t for t in tasks if t.key == effects[0].key)
        assert first.assignee == effects[0].recipient.id
        assert first.due == date(2025, 3, 10)
        row = double.tables["vtb_task"][results[0].ref.remote_id.split("/")[1]]
        assert row["correlation_display"] == "itsm_change_sdk"

    def test_known_keys_are_updated_in_place(self, platform, double):
        (alice,) = people(double, 1)
        first = platform.itsm_change_publish_training([training(alice)], {})[0]

        changed = training(alice, title="Portal basics (v2)", due=date(2025, 3, 20))
        again = platform.itsm_change_publish_training([changed], {changed.key: first.ref})[0]

        assert again.ok and again.ref.remote_id == first.ref.remote_id
        (task,) = double.records(EffectKind.TRAINING)
        assert task.title == "Portal basics (v2)" and task.due == date(2025, 3, 20)

    def test_timeout_after_the_write_was_applied_does_not_duplicate(self, platform, double):
        effects = [training(p) for p in people(double, 3)]
        double.fail_next_write(after_apply=True)

        results = platform.itsm_change_publish_training(effects, {})

        assert all(r.ok for r in results)
        assert len(double.records(EffectKind.TRAINING)) == 3

    def test_timeout_before_the_write_resends_once(self, platform, double):
        effects = [training(p) for p in people(double, 2)]
        double.fail_next_write(after_apply=False)

        results = platform.itsm_change_publish_training(effects, {})

        assert all(r.ok for r in results)
        assert len(double.records(EffectKind.TRAINING)) == 2

    def test_failed_and_unserviced_sub_requests(self, platform, double):
        a, b, c = people(double, 3)
        effects = [training(a), training(b, title="Rejected"), training(c)]
        double.fail_item_once["Rejected"] = (403, "Operation Failed")
        double.unservice_once.add("2")

        results = platform.itsm_change_publish_training(effects, {})

        assert results[0].ok and results[2].ok
        assert not results[1].ok and "Operation Failed" in results[1].error
        assert not results[1].uncertain
        keys = sorted(t.key for t in double.records(EffectKind.TRAINING))
        assert keys == sorted([effects[0].key, effects[2].key])

    def test_batch_bodies_are_base64_json(self, platform, double, rsps):
        (alice,) = people(double, 1)
        platform.itsm_change_publish_training([training(alice)], {})
        batch = next(c.request for c in rsps.calls if c.request.url.endswith("/v1/batch"))
        item = json.loads(batch.body)["rest_requests"][0]
        assert item["method"] == "POST"
        assert item["url"].startswith("/api/now/table/vtb_task?")
        assert json.loads(base64.b64decode(item["body"]))["assigned_to"] == alice.id

    def test_missing_recipient_is_a_failed_result(self, platform, double):
        effect = Effect(key="chg:p:training:m:x", kind=EffectKind.TRAINING,
                        platform="servicenow", program="p", title="t", body="b",
                        channel="task")
        assert platform.itsm_change_publish_training([effect], {})[0].ok is False


class TestStatusAndRetire:
    def test_completion_is_read_from_state(self, platform, double):
        a, b = people(double, 2)
        refs = [r.ref for r in platform.itsm_change_publish_training(
            [training(a), training(b)], {})]
        double.complete_task(refs[0], datetime(2025, 3, 5, 10, tzinfo=UTC))

        status = {s.key: s for s in platform.itsm_change_training_status(refs)}

        assert status[refs[0].key].completed
        assert status[refs[0].key].completed_at == datetime(2025, 3, 5, 10, tzinfo=UTC)
        assert not status[refs[1].key].completed

    def test_retire_skips_open_tasks_and_leaves_completed_ones(self, platform, double):
        a, b = people(double, 2)
        refs = [r.ref for r in platform.itsm_change_publish_training(
            [training(a), training(b)], {})]
        double.complete_task(refs[0], datetime(2025, 3, 5, tzinfo=UTC))

        results = platform.itsm_change_retire_effects(refs)

        assert all(r.ok for r in results)
        rows = {r["sys_id"]: r for r in double.tables["vtb_task"].values()}
        assert rows[refs[0].remote_id.split("/")[1]]["state"] == "3"
        assert rows[refs[1].remote_id.split("/")[1]]["state"] == "7"


def message(channel, key, **kw):
    return Effect(key=key, kind=EffectKind.MESSAGE, platform="servicenow", program="portal",
                  title=kw.pop("title", "Kickoff"), body=kw.pop("body", "The portal is live."),
                  channel=channel, **kw)


class TestCommunication:
    def test_work_note_on_a_change_by_number(self, platform, double):
        ticket = double.add_ticket(title="Portal rollout", kind="change",
                                   opened_at=datetime(2025, 2, 1, tzinfo=UTC))
        effect = message("ticket_note", "chg:portal:message:kickoff", ticket_id=ticket.number,
                         body="Hi [code]<img src=x onerror=alert(1)>[/code] team")

        (result,) = platform.itsm_change_deliver_communication([effect], {})

        assert result.ok and result.ref.remote_id == f"change_request/{ticket.id}#note"
        (note,) = [r for r in double.tables["sys_journal_field"].values()]
        assert note["element"] == "work_notes" and note["element_id"] == ticket.id
        assert "[code]" not in note["value"].lower() and "[/code]" not in note["value"].lower()
        found = platform.itsm_change_find_effects(EffectKind.MESSAGE, [effect.key])
        assert [r.key for r in found] == [effect.key]

    def test_known_note_is_not_posted_again(self, platform, double):
        ticket = double.add_ticket(title="x", opened_at=datetime(2025, 2, 1, tzinfo=UTC))
        effect = message("ticket_note", "chg:portal:message:k2", ticket_id=ticket.id)
        ref = platform.itsm_change_deliver_communication([effect], {})[0].ref
        writes = double.write_calls()
        assert platform.itsm_change_deliver_communication([effect], {effect.key: ref})[0].ok
        assert double.write_calls() == writes

    def test_announcement_created_then_updated_in_place(self, platform, double):
        double.add_group("Service Desk", [])
        effect = message("announcement", "chg:portal:message:banner",
                         audience_groups=("service desk",),
                         visible_from=datetime(2025, 3, 1, tzinfo=UTC),
                         visible_until=datetime(2025, 3, 31, tzinfo=UTC))
        (result,) = platform.itsm_change_deliver_communication([effect], {})
        assert result.ok
        row = double.tables["announcement"][announcement_sys_id(effect.key)]
        assert row["from"] == "2025-03-01 00:00:00" and row["to"] == "2025-03-31 00:00:00"

        changed = message("announcement", effect.key, title="Kickoff (moved)",
                          audience_groups=("Service Desk",))
        again = platform.itsm_change_deliver_communication([changed], {effect.key: result.ref})
        assert again[0].ok and len(double.tables["announcement"]) == 1
        assert row["title"] == "Kickoff (moved)"
        assert platform.itsm_change_find_effects(EffectKind.MESSAGE, [effect.key])

    def test_unknown_group_fails_the_item(self, platform, double):
        effect = message("announcement", "chg:p:message:x", audience_groups=("Nobody",))
        (result,) = platform.itsm_change_deliver_communication([effect], {})
        assert not result.ok and "Nobody" in result.error

    def test_unknown_channel_is_unsupported(self, platform):
        with pytest.raises(UnsupportedOperation):
            platform.itsm_change_deliver_communication(
                [message("public_comment", "chg:p:message:y")], {})

    def test_hostile_ticket_number_fails_without_querying(self, platform, double, rsps):
        effect = message("ticket_note", "chg:p:message:z", ticket_id="CHG1^NQactive=true")
        (result,) = platform.itsm_change_deliver_communication([effect], {})
        assert not result.ok
        assert not double.tables["sys_journal_field"]


class TestNoteLookup:
    def test_a_note_is_looked_up_on_the_record_its_key_names(self, platform, double, rsps):
        ticket = double.add_ticket(title="Portal rollout", kind="change",
                                   opened_at=datetime(2025, 2, 1, tzinfo=UTC))
        other = double.add_ticket(title="Copy", opened_at=datetime(2025, 2, 2, tzinfo=UTC))
        effect = message("ticket_note", f"chg:portal:comm:kickoff:{ticket.number}",
                         ticket_id=ticket.number)
        # An agent pasted the note, marker and all, into another record first.
        double.add_comment(other.id, double.add_person("Agent", "a@example.com"),
                           f"fyi [itsm-change:{effect.key}]",
                           datetime(2025, 2, 3, tzinfo=UTC), internal=True)
        platform.itsm_change_deliver_communication([effect], {})
        rsps.calls.reset()

        (ref,) = platform.itsm_change_find_effects(EffectKind.MESSAGE, [effect.key])

        assert ref.remote_id == f"change_request/{ticket.id}#note"
        journal = [c.request.url for c in rsps.calls if "sys_journal_field" in c.request.url]
        assert journal and all(f"element_id%3D{ticket.id}" in url for url in journal)

    def test_a_key_naming_no_record_is_searched_everywhere(self, platform, double):
        ticket = double.add_ticket(title="x", opened_at=datetime(2025, 2, 1, tzinfo=UTC))
        effect = message("ticket_note", "chg:portal:comm:k3:legacy", ticket_id=ticket.id)
        platform.itsm_change_deliver_communication([effect], {})
        (ref,) = platform.itsm_change_find_effects(EffectKind.MESSAGE, [effect.key])
        assert ref.remote_id == f"incident/{ticket.id}#note"

    def test_an_outside_ticket_id_with_a_line_break_is_not_found(self, platform, rsps):
        assert platform.itsm_change_get_ticket("INC1\nactive=true") is None
        assert not any("/task" in c.request.url for c in rsps.calls)

    def test_a_key_that_no_query_can_carry_is_refused(self, platform, rsps):
        with pytest.raises(ConfigurationError, match="line break"):
            platform.itsm_change_find_effects(
                EffectKind.PROMPT, ["chg:portal:prompt:x:INC1\nactive=true"])
        assert not any("sys_journal_field" in c.request.url for c in rsps.calls)


class TestPrompts:
    def test_prompt_is_a_work_note_found_again_by_key(self, platform, double):
        ticket = double.add_ticket(title="VPN down", opened_at=datetime(2025, 2, 1, tzinfo=UTC))
        effect = Effect(key=f"chg:portal:prompt:vpn:{ticket.id}", kind=EffectKind.PROMPT,
                        platform="servicenow", program="portal", title="Tip",
                        body="Point the caller to the portal.", channel="ticket_note",
                        ticket_id=ticket.id)
        double.fail_next_write(after_apply=True)

        (result,) = platform.itsm_change_post_prompts([effect], {})

        assert result.ok
        notes = double.records(EffectKind.PROMPT)
        assert len(notes) == 1 and notes[0].ticket_id == ticket.id


class TestCorrelationField:
    def test_unchecked_custom_field_is_refused(self, double, no_sleep, rsps):
        platform = ServiceNowPlatform.from_settings(
            {**double.settings(), "correlation_field": "u_itsm_keyy"})
        platform.transport.policy = no_sleep
        with pytest.raises(ConfigurationError, match="u_itsm_keyy"):
            platform.itsm_change_find_effects(EffectKind.TRAINING, ["chg:p:training:m:x"])
        assert not any("/vtb_task" in c.request.url for c in rsps.calls)

    def test_checked_custom_field_is_used(self, double, no_sleep):
        double.insert("sys_dictionary", {"name": "task", "element": "u_itsm_key"})
        platform = ServiceNowPlatform.from_settings(
            {**double.settings(), "correlation_field": "u_itsm_key"})
        platform.transport.policy = no_sleep
        (alice,) = people(double, 1)
        effect = training(alice)
        platform.itsm_change_publish_training([effect], {})
        row = next(iter(double.tables["vtb_task"].values()))
        assert row["u_itsm_key"] == effect.key
        assert platform.itsm_change_find_effects(EffectKind.TRAINING, [effect.key])

    def test_long_keys_are_stored_as_a_digest_and_found(self, platform, double):
        (alice,) = people(double, 1)
        effect = training(alice, module="m" * 120)
        platform.itsm_change_publish_training([effect], {})
        row = next(iter(double.tables["vtb_task"].values()))
        assert len(row["correlation_id"]) <= 100
        assert [r.key for r in double.records(EffectKind.TRAINING)] == [effect.key]
        assert [r.key for r in platform.itsm_change_find_effects(
            EffectKind.TRAINING, [effect.key])] == [effect.key]
