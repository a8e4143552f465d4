"""Training assignments: one ticket (or task) per person, found again by its key."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from itsm_change_sdk.errors import AuthenticationError
from itsm_change_sdk.model import Effect, EffectKind, EffectRef, Person


def due_in(days: int) -> date:
    return (datetime.now(UTC) + timedelta(days=days)).date()


KEY = "chg:portal-rollout:training:portal-basics:{}"


def training(person, title="Portal basics", body="Read <this> & \"that\"", days=14):
    return Effect(key=KEY.format(person.id), kind=EffectKind.TRAINING, platform="freshservice",
                  program="portal-rollout", title=title, body=body, channel="task",
                  recipient=person, due=due_in(days))


class TestPublishTraining:
    def test_creates_one_ticket_per_person_with_escaped_body_and_key_tag(self, platform, fake):
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        [result] = platform.itsm_change_publish_training([training(alice)], {})
        assert result.ok and result.ref.remote_id.startswith("ticket:")
        [sent] = fake.calls("POST", "/api/v2/tickets")
        payload = json.loads(sent.body)
        assert payload["responder_id"] == int(alice.id)
        assert payload["requester_id"] == int(alice.id)
        assert "&lt;this&gt; &amp; &quot;that&quot;" in payload["description"]
        assert "<this>" not in payload["description"]
        assert "itsm-change" in payload["tags"]
        assert any(t.startswith("itsm-k-") for t in payload["tags"])
        assert payload["due_by"].endswith("T17:00:00Z")
        [record] = fake.records(EffectKind.TRAINING)
        assert record.key == KEY.format(alice.id) and record.assignee == alice.id
        assert record.due == due_in(14)

    def test_requester_email_setting_is_used_as_the_requester(self, make_platform, fake):
        platform = make_platform(requester_email="change-team@acme.example")
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        platform.itsm_change_publish_training([training(alice)], {})
        payload = json.loads(fake.calls("POST", "/api/v2/tickets")[0].body)
        assert payload["email"] == "change-team@acme.example" and "requester_id" not in payload

    def test_known_key_is_updated_in_place(self, platform, fake):
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        [first] = platform.itsm_change_publish_training([training(alice)], {})
        changed = training(alice, title="Portal basics (v2)", days=20)
        [second] = platform.itsm_change_publish_training([changed], {changed.key: first.ref})
        assert second.ok and second.ref.remote_id == first.ref.remote_id
        assert len(fake.calls("POST", "/api/v2/tickets")) == 1
        [record] = fake.records(EffectKind.TRAINING)
        assert record.title == "Portal basics (v2)" and record.due == due_in(20)

    def test_timeout_after_the_write_was_applied_creates_no_duplicate(self, platform, fake):
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        fake.fail_next_write(after_apply=True)
        [result] = platform.itsm_change_publish_training([training(alice)], {})
        assert result.ok
        assert len(fake.records(EffectKind.TRAINING)) == 1
        assert fake.calls("GET", "/api/v2/tickets/filter"), "looked the key up before re-sending"
        assert result.ref.remote_id == fake.records(EffectKind.TRAINING)[0].remote_id

    def test_timeout_before_the_write_was_applied_sends_it_again_once(self, platform, fake):
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        fake.fail_next_write(after_apply=False)
        [result] = platform.itsm_change_publish_training([training(alice)], {})
        assert result.ok and len(fake.records(EffectKind.TRAINING)) == 1
        assert len(fake.calls("POST", "/api/v2/tickets")) == 2

    def test_validation_error_is_a_failed_result_with_freshservice_message(self, platform, fake):
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        bob = fake.add_person("Bob Jones", "bob@acme.example")
        fake.queue("POST", "/api/v2/tickets", 400, {
            "description": "Validation failed",
            "errors": [{"field": "due_by", "message": "Has to be a future date",
                        "code": "invalid_value"}]})
        results = platform.itsm_change_publish_training([training(alice), training(bob)], {})
        assert not results[0].ok and not results[0].uncertain
        assert "Validation failed" in results[0].error and "due_by" in results[0].error
        assert results[1].ok

    def test_refused_key_fails_the_whole_call_without_showing_the_key(self, make_platform, fake,
                                                                      api_key):
        platform = make_platform(api_key="wrong-key-123456")
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        with pytest.raises(AuthenticationError) as info:
            platform.itsm_change_publish_training([training(alice)], {})
        assert "wrong-key-123456" not in str(info.value)
        assert "wrong-key-123456" not in repr(info.value)
        assert api_key not in str(info.value)

    def test_recipient_without_agent_id_fails_that_item_only(self, platform, fake):
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        effect = training(alice)
        broken = Effect(**{**effect.__dict__, "key": "chg:x:training:m:nobody", "recipient": None})
        results = platform.itsm_change_publish_training([broken, effect], {})
        assert [r.ok for r in results] == [False, True]


class TestTrainingStatus:
    def test_resolved_and_closed_tickets_count_as_complete(self, platform, fake):
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        bob = fake.add_person("Bob Jones", "bob@acme.example")
        a, b = platform.itsm_change_publish_training([training(alice), training(bob)], {})
        fake.complete_task(a.ref, datetime.now(UTC))
        gone = EffectRef(key="chg:x:training:m:gone", platform="freshservice",
                         remote_id="ticket:999999")
        statuses = platform.itsm_change_training_status([a.ref, b.ref, gone])
        assert [(s.key, s.completed) for s in statuses] == [(a.key, True), (b.key, False)]
        assert statuses[0].completed_at is not None


class TestRetire:
    def test_retired_ticket_is_closed_not_deleted(self, platform, fake):
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        [a] = platform.itsm_change_publish_training([training(alice)], {})
        [result] = platform.itsm_change_retire_effects([a.ref])
        assert result.ok
        tid = int(a.ref.remote_id.split(":")[1])
        assert fake.tickets[tid]["status"] == 5
        assert not fake.calls("DELETE", f"/api/v2/tickets/{tid}")

    def test_record_already_gone_counts_as_retired(self, platform):
        ref = EffectRef(key="k", platform="freshservice", remote_id="ticket:424242")
        assert platform.itsm_change_retire_effects([ref])[0].ok


class TestTaskMode:
    @pytest.fixture
    def parent(self, fake):
        return fake.add_ticket(title="Portal rollout training", opened_at=datetime.now(UTC))

    def test_tasks_on_the_parent_ticket_carry_the_key_and_read_back(self, make_platform, fake,
                                                                    parent):
        platform = make_platform(training_mode="task", training_ticket=f"#SR-{parent.id}")
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        [result] = platform.itsm_change_publish_training([training(alice)], {})
        assert result.ref.remote_id.startswith(f"task:{parent.id}:")
        payload = json.loads(fake.calls("POST", f"/api/v2/tickets/{parent.id}/tasks")[0].body)
        assert payload["agent_id"] == int(alice.id) and payload["status"] == 1
        found = platform.itsm_change_find_effects(EffectKind.TRAINING, [result.key, "other"])
        assert [r.remote_id for r in found] == [result.ref.remote_id]
        fake.complete_task(result.ref, datetime.now(UTC))
        [status] = platform.itsm_change_training_status([result.ref])
        assert status.completed

    def test_task_timeout_after_apply_is_found_not_duplicated(self, make_platform, fake, parent):
        platform = make_platform(training_mode="task", training_ticket=str(parent.id))
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        fake.fail_next_write(after_apply=True)
        [result] = platform.itsm_change_publish_training([training(alice)], {})
        assert result.ok and len(fake.tasks[int(parent.id)]) == 1

    def test_a_key_that_prefixes_another_is_not_taken_for_it(self, make_platform, fake, parent):
        """Keys differ only in their tail (person 1001 vs 10011): a lookup must match the
        whole key, or a lost create is taken as done and that person never gets the task."""
        platform = make_platform(training_mode="task", training_ticket=str(parent.id))
        short, long = (Person(id=i, name=f"Agent {i}", platform="freshservice")
                       for i in ("1001", "10011"))
        [other] = platform.itsm_change_publish_training([training(long)], {})
        assert platform.itsm_change_find_effects(EffectKind.TRAINING,
                                                 [training(short).key]) == []
        fake.fail_next_write(after_apply=False)
        [lost] = platform.itsm_change_publish_training([training(short)], {})
        assert lost.ok and lost.ref.remote_id != other.ref.remote_id, "looked up, then re-sent"
        assert sorted(t["agent_id"] for t in fake.tasks[int(parent.id)]) == [1001, 10011]
