"""doctor, install, settings and registration."""

from __future__ import annotations

import logging

import pytest
from itsm_change_freshservice.client import FreshservicePlatform
from itsm_change_freshservice.mapping import normalize_domain

from itsm_change_sdk.config import platform_settings
from itsm_change_sdk.errors import ConfigurationError
from itsm_change_sdk.model import CheckStatus


class TestDoctor:
    def test_healthy_account(self, platform, fake):
        checks = {c.name: c for c in platform.itsm_change_doctor()}
        for name in ("domain", "api key", "list tickets", "agent groups", "agents",
                     "announcements", "tag lookup", "rate limit"):
            assert checks[name].status == CheckStatus.OK, name
        assert checks["create tickets"].status == CheckStatus.OK
        assert checks["other writes"].status == CheckStatus.WARN and checks["other writes"].fix
        assert "writes" not in checks
        assert fake.tickets == {}, "the write check created a ticket"
        list_call = fake.calls("GET", "/api/v2/tickets")[0]
        assert "updated_since=" in list_call.url and "per_page=1" in list_call.url

    def test_refused_key_has_a_plain_fix(self, make_platform, fake):
        platform = make_platform(api_key="wrong-key-123456")
        checks = {c.name: c for c in platform.itsm_change_doctor()}
        assert checks["api key"].status == CheckStatus.FAIL
        assert "API Key" in checks["api key"].fix
        assert all("wrong-key-123456" not in (c.message + (c.fix or ""))
                   for c in checks.values())

    def test_missing_permission_names_the_privilege(self, platform, fake):
        fake.queue("GET", "/api/v2/announcements", 403,
                   {"code": "access_denied",
                    "message": "You are not authorized to perform this action."})
        checks = {c.name: c for c in platform.itsm_change_doctor()}
        assert checks["announcements"].status == CheckStatus.FAIL
        assert "Manage announcements" in checks["announcements"].fix

    def test_a_read_only_key_fails_for_what_apply_must_write(self, platform, fake):
        fake.queue("POST", "/api/v2/tickets", 403,
                   {"code": "access_denied",
                    "message": "You are not authorized to perform this action."})
        checks = {c.name: c for c in platform.itsm_change_doctor()}
        assert checks["list tickets"].status == CheckStatus.OK
        assert checks["create tickets"].status == CheckStatus.FAIL
        assert "read-only" in checks["create tickets"].message
        assert "403" in checks["create tickets"].message
        assert "Admin > Roles" in checks["create tickets"].fix

    def test_an_occasional_agent_fails_the_write_check(self, platform, fake):
        fake.me["occasional"] = True
        checks = {c.name: c for c in platform.itsm_change_doctor()}
        assert checks["writes"].status == CheckStatus.FAIL
        assert "day pass" in checks["writes"].message and "full-time" in checks["writes"].fix

    def test_html_answer_means_wrong_domain(self, platform, fake):
        fake.queue("GET", "/api/v2/agents/me", 200, "<html>Sign in</html>",
                   headers={"Content-Type": "text/html"})
        [check] = platform.itsm_change_doctor()
        assert check.name == "domain" and check.status == CheckStatus.FAIL and check.fix


class TestInstall:
    def test_workflows_cannot_be_applied_and_come_with_steps(self, platform):
        steps = platform.itsm_change_install("https://hooks.acme.example/fs", True, False)
        assert [s.name for s in steps] == ["workflow: ticket_created", "workflow: ticket_updated",
                                           "workflow: note_added"]
        assert all(not s.done and "cannot be created" in s.message for s in steps)
        text = steps[1].instructions
        for needed in ("Workflow Automator", "Trigger Webhook", "POST",
                       "https://hooks.acme.example/fs", "X-ITSM-Change-Secret",
                       "{{ticket.id}}", "Ticket is updated"):
            assert needed in text

    def test_remove_says_what_to_remove(self, platform):
        steps = platform.itsm_change_install(None, False, True)
        assert all("Deactivate" in s.instructions for s in steps)


class TestSettings:
    @pytest.mark.parametrize("value", ["acme", "ACME", "acme.freshservice.com",
                                       "https://acme.freshservice.com",
                                       "https://acme.freshservice.com/"])
    def test_domain_forms_accepted(self, value):
        assert normalize_domain(value) == "https://acme.freshservice.com"

    @pytest.mark.parametrize("value", ["http://acme.freshservice.com", "help.acme.com",
                                       "https://acme.freshservice.com/api/v2",
                                       "https://evil.com/?x=.freshservice.com", "ac me", ""])
    def test_other_domains_refused(self, value):
        with pytest.raises(ConfigurationError):
            normalize_domain(value)

    def test_settings_from_the_environment_with_the_key_kept_secret(self, monkeypatch, api_key):
        from itsm_change_freshservice.hooks import SECRETS, SETTINGS

        monkeypatch.setenv("ITSM_CHANGE_FRESHSERVICE_DOMAIN", "acme")
        monkeypatch.setenv("ITSM_CHANGE_FRESHSERVICE_API_KEY", api_key)
        monkeypatch.setenv("ITSM_CHANGE_FRESHSERVICE_PLAN", "growth")
        settings = platform_settings("freshservice", SETTINGS, SECRETS, config={})
        platform = FreshservicePlatform.from_settings(settings)
        assert platform.base_url == "https://acme.freshservice.com"
        assert api_key not in repr(settings) and api_key not in repr(platform)

    def test_missing_key_says_which_variable_to_set(self, monkeypatch):
        from itsm_change_freshservice.hooks import SECRETS, SETTINGS

        monkeypatch.delenv("ITSM_CHANGE_FRESHSERVICE_API_KEY", raising=False)
        settings = platform_settings("freshservice", SETTINGS, SECRETS,
                                     explicit={"domain": "acme"}, config={})
        with pytest.raises(ConfigurationError, match="ITSM_CHANGE_FRESHSERVICE_API_KEY"):
            FreshservicePlatform.from_settings(settings)

    def test_task_mode_needs_the_parent_ticket(self, api_key):
        with pytest.raises(ConfigurationError, match="training_ticket"):
            FreshservicePlatform(domain="acme", api_key=api_key, training_mode="task")

    def test_key_never_logged(self, platform, fake, caplog, api_key):
        caplog.set_level(logging.DEBUG)
        platform.itsm_change_doctor()
        assert caplog.records and api_key not in caplog.text


class TestRegistration:
    def test_entry_point_registers_the_platform(self):
        from itsm_change_sdk.plugins import get_plugin_manager, platform_registry

        spec = platform_registry(get_plugin_manager()).specs["freshservice"]
        assert {"api_key", "webhook_secret"} <= set(spec.secrets)
        assert "domain" in spec.settings


class TestUnitMembers:
    def test_group_members_by_group_name_plus_explicit_members(self, platform, fake):
        from itsm_change_sdk.model import Unit

        alice = fake.add_person("Alice Smith", "alice@acme.example")
        bob = fake.add_person("Bob Jones", "bob@acme.example")
        carol = fake.add_person("Carol White", "carol@acme.example")
        fake.agents[int(bob.id)]["active"] = False
        fake.add_group("Service Desk", [alice, bob])
        unit = Unit(id="sd", title="SD", wave="pilot", platform="freshservice",
                    group="service desk", members=(carol.id,))
        people = platform.itsm_change_unit_members(unit)
        assert [p.email for p in people] == ["alice@acme.example", "carol@acme.example"]

    def test_the_agent_list_is_read_once_for_every_unit(self, platform, fake):
        """An apply asks for each unit's members; the account's agents and groups are paged
        through once, not once per unit."""
        from itsm_change_sdk.model import Unit

        fake.set_page_size(2)
        people = [fake.add_person(f"Agent {i}", f"agent{i}@acme.example") for i in range(6)]
        fake.add_group("Desk A", people[:3])
        fake.add_group("Desk B", people[3:])
        found = [platform.itsm_change_unit_members(Unit(
            id=f"u{name}", title=name, wave="pilot", platform="freshservice",
            group=f"Desk {name}")) for name in "AB"]
        assert [len(f) for f in found] == [3, 3]
        assert len(fake.calls("GET", "/api/v2/agents")) == 4  # 7 agents (with the API's own)
        assert len(fake.calls("GET", "/api/v2/agent_groups")) == 1

    def test_unknown_group_is_a_configuration_error(self, platform, fake):
        from itsm_change_sdk.model import Unit

        unit = Unit(id="sd", title="SD", wave="pilot", platform="freshservice", group="Nope")
        with pytest.raises(ConfigurationError, match="Nope"):
            platform.itsm_change_unit_members(unit)
