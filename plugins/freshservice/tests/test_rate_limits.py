"""Pacing from Freshservice's rate-limit headers, sub-limits, and 429 with Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from itsm_change_freshservice.api import endpoint_class, make_pacer
from itsm_change_freshservice.client import FreshservicePlatform

from itsm_change_sdk.errors import ConfigurationError


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class TestBudgetPacing:
    def test_falling_remaining_budget_slows_a_burst(self, fake, api_key):
        clock = FakeClock()
        platform = FreshservicePlatform(domain="acme", api_key=api_key, clock=clock,
                                        sleep=clock.sleep)
        fake.rate_total = 100
        fake.remaining = lambda n: 100 - n
        for _ in range(90):
            platform.itsm_change_get_ticket("424242")
        assert clock.sleeps, "the burst was slowed"
        assert clock.sleeps == sorted(clock.sleeps), "waits grow as the budget shrinks"
        assert sum(clock.sleeps) <= 60.0
        assert not [s for s in clock.sleeps if s > 60.0]

    def test_plenty_of_budget_means_no_waiting(self, fake, api_key):
        clock = FakeClock()
        platform = FreshservicePlatform(domain="acme", api_key=api_key, clock=clock,
                                        sleep=clock.sleep)
        for _ in range(20):
            platform.itsm_change_get_ticket("424242")
        assert clock.sleeps == []


class TestSubLimits:
    def test_endpoint_classes(self):
        base = "https://acme.freshservice.com/api/v2"
        assert endpoint_class("GET", f"{base}/tickets?updated_since=x") == "list_tickets"
        assert endpoint_class("GET", f"{base}/tickets/filter?query=x") == "list_tickets"
        assert endpoint_class("POST", f"{base}/tickets") == "ticket"
        assert endpoint_class("PUT", f"{base}/tickets/12") == "ticket"
        assert endpoint_class("GET", f"{base}/agents") == "list_agents"
        assert endpoint_class("POST", f"{base}/tickets/12/notes") is None

    def test_starter_plan_keeps_list_tickets_under_40_a_minute(self):
        clock = FakeClock()
        pacer = make_pacer("starter", clock=clock, sleep=clock.sleep)
        url = "https://acme.freshservice.com/api/v2/tickets?page=1"
        for _ in range(41):
            pacer.before_request("GET", url)
        assert clock.sleeps and clock.sleeps[0] == pytest.approx(60.0)
        assert len(clock.sleeps) == 1

    def test_old_plan_names_are_accepted_and_unknown_ones_refused(self):
        assert make_pacer("Blossom").sub_limits["list_tickets"] == 40
        with pytest.raises(ConfigurationError):
            make_pacer("platinum")


class TestRateLimited:
    def test_429_waits_for_retry_after_then_succeeds(self, platform, fake, sleeps):
        ticket = fake.add_ticket(title="A", opened_at=datetime.now(UTC))
        fake.queue("GET", f"/api/v2/tickets/{ticket.id}", 429,
                   {"description": "You have exceeded the limit of requests per minute",
                    "errors": []}, headers={"Retry-After": "7"})
        assert platform.itsm_change_get_ticket(ticket.id).title == "A"
        assert 7.0 in sleeps

    def test_429_on_a_create_is_retried_without_duplicating(self, platform, fake, sleeps):
        from itsm_change_sdk.model import Effect, EffectKind

        alice = fake.add_person("Alice Smith", "alice@acme.example")
        fake.queue("POST", "/api/v2/tickets", 429, {"description": "Too many requests"},
                   headers={"Retry-After": "3"})
        [result] = platform.itsm_change_publish_training([Effect(
            key="chg:p:training:m:1", kind=EffectKind.TRAINING, platform="freshservice",
            program="p", title="T", body="B", channel="task", recipient=alice)], {})
        assert result.ok and 3.0 in sleeps
        assert len([t for t in fake.tickets.values() if "itsm-change" in t["tags"]]) == 1
