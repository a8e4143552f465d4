"""Feedback marker, settings, plugin routing and template rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from itsm_change_sdk import hookimpl
from itsm_change_sdk.config import Settings, ledger_url, platform_settings
from itsm_change_sdk.errors import ConfigurationError, PluginError, WebhookRejected
from itsm_change_sdk.feedback import parse_feedback
from itsm_change_sdk.hookspecs import REQUIRED_PLATFORM_HOOKS
from itsm_change_sdk.model import Ticket, TicketFilter
from itsm_change_sdk.planner import render_template
from itsm_change_sdk.plugins import PlatformRegistry, Platforms, get_plugin_manager


class TestFeedbackMarker:
    def test_scores_and_text(self):
        parsed = parse_feedback(
            "Done. #feedback awareness=4 de:3 KN=2 ability=5 re=1 the search is slow", "#feedback")
        assert parsed.scores == {"awareness": 4, "desire": 3, "knowledge": 2, "ability": 5,
                                 "reinforcement": 1}
        assert parsed.text == "the search is slow"

    def test_out_of_range_scores_stay_in_the_text(self):
        parsed = parse_feedback("#feedback ability=9 desire=0 ok", "#feedback")
        assert parsed.scores == {}
        assert parsed.text == "ability=9 desire=0 ok"

    def test_marker_is_case_insensitive_and_survey_is_named(self):
        parsed = parse_feedback("#FEEDBACK survey=adkar-pulse kn=4", "#feedback")
        assert parsed.survey == "adkar-pulse" and parsed.scores == {"knowledge": 4}

    def test_no_marker_no_feedback(self):
        assert parse_feedback("called the user back", "#feedback") is None


class TestSettings:
    def test_explicit_beats_environment_beats_file(self, monkeypatch):
        monkeypatch.setenv("ITSM_CHANGE_ACME_URL", "https://env.example.com")
        monkeypatch.setenv("ITSM_CHANGE_ACME_USER", "env-user")
        monkeypatch.setenv("ACME_TOKEN", "tok-from-env-var")
        config = {"platforms": {"acme": {"url": "https://file.example.com", "page_size": 50,
                                         "token": {"env": "ACME_TOKEN"}}}}
        settings = platform_settings("acme", ["url", "token", "page_size", "user"], ["token"],
                                     explicit={"user": "svc"}, config=config)
        assert settings["url"] == "https://env.example.com"
        assert settings["token"] == "tok-from-env-var"
        assert settings["page_size"] == 50
        assert settings["user"] == "svc"

    def test_default_paths_are_the_operating_systems_per_user_directories(self, monkeypatch):
        import platformdirs

        from itsm_change_sdk.config import config_path, data_dir

        monkeypatch.delenv("ITSM_CHANGE_HOME")
        monkeypatch.delenv("ITSM_CHANGE_CONFIG")
        assert data_dir() == Path(platformdirs.user_data_dir("itsm-change", appauthor=False))
        assert config_path().parent == Path(
            platformdirs.user_config_dir("itsm-change", appauthor=False))

    def test_secrets_are_hidden_in_repr(self):
        settings = Settings("acme", {"token": "tok-secret-value", "url": "u"}, ["token"])
        assert "tok-secret-value" not in repr(settings)
        assert "'url': 'u'" in repr(settings)

    def test_missing_setting_says_how_to_set_it(self):
        with pytest.raises(ConfigurationError, match="ITSM_CHANGE_ACME_URL"):
            Settings("acme", {}).require("url", "the site URL")

    def test_malformed_indirection_is_explained(self):
        with pytest.raises(ConfigurationError, match=r"\{ env = \"VAR\" \}"):
            platform_settings("acme", ["token"], config={"platforms": {"acme": {
                "token": {"vault": "x"}}}})

    def test_a_plain_path_is_an_sqlite_ledger(self, tmp_path):
        assert ledger_url(str(tmp_path / "l.db")) == f"sqlite:///{tmp_path / 'l.db'}"


def _unexpected(name: str):
    def hook(self):
        raise AssertionError(f"{name} was not expected")

    hook.__name__ = name
    return hookimpl(hook)


class Recorder:
    """A platform that records ``get_ticket`` calls; its other required hooks must not run."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[str] = []

    @hookimpl
    def itsm_change_get_ticket(self, ticket_id: str):
        self.calls.append(ticket_id)
        return None


for _name in REQUIRED_PLATFORM_HOOKS - {"itsm_change_get_ticket"}:
    setattr(Recorder, _name, _unexpected(_name))


class TestPlatformRouting:
    def test_a_call_reaches_only_the_named_platform(self):
        platforms = Platforms(get_plugin_manager(load_entry_points=False))
        first, second = Recorder("one"), Recorder("two")
        platforms.add("one", first)
        platforms.add("two", second)
        platforms.call("two", "itsm_change_get_ticket", ticket_id="INC1")
        assert (first.calls, second.calls) == ([], ["INC1"])

    def test_a_platform_missing_a_required_hook_is_refused_by_name(self):
        class Forgetful(Recorder):
            itsm_change_find_effects = None  # as if its @hookimpl had been left off

        platforms = Platforms(get_plugin_manager(load_entry_points=False))
        with pytest.raises(PluginError, match=r"'acme'.*itsm_change_find_effects;"):
            platforms.add("acme", Forgetful("acme"))
        assert "acme" not in platforms.instances

    def test_calling_a_platform_that_is_not_enabled_says_so(self):
        platforms = Platforms(get_plugin_manager(load_entry_points=False))
        with pytest.raises(ConfigurationError, match="not enabled"):
            platforms.call("jira", "itsm_change_get_ticket", ticket_id="X")

    def test_a_platform_name_registers_once(self):
        registry = PlatformRegistry()
        registry.add("acme", lambda s: object())
        with pytest.raises(PluginError, match="registered twice"):
            registry.add("acme", lambda s: object())

    def test_disabled_plugins_are_blocked(self, monkeypatch):
        monkeypatch.setenv("ITSM_CHANGE_DISABLED_PLUGINS", "jira")
        pm = get_plugin_manager()
        assert pm.is_blocked("jira")


class TestTemplates:
    def test_known_placeholders_are_filled(self):
        assert render_template("{unit} goes live {go_live}", {"unit": "Tier 1",
                                                              "go_live": "2027-01-18"}) == \
            "Tier 1 goes live 2027-01-18"

    def test_attribute_access_is_never_evaluated(self):
        text = render_template("{unit.__class__} {unit!r} {missing}", {"unit": "Tier 1"})
        assert text == "{unit.__class__} {unit!r} {missing}"


def test_ticket_filter_matches_case_insensitively(at):
    ticket = Ticket("sandbox", "1", "INC1", "x", "incident", "open", at, at,
                    category="Password Reset", channel="phone")
    assert TicketFilter(categories=("password reset",), channels=("PHONE", "email")
                        ).matches(ticket)
    assert not TicketFilter(categories=("hardware",)).matches(ticket)
    assert not TicketFilter(platform="jira").matches(ticket)


class TestWebhookVerification:
    def request(self, headers, secret="s3cret-value", body=b'{"a": 1}'):
        from itsm_change_sdk.model import WebhookRequest

        return WebhookRequest("acme", headers, body, secret=secret)

    def test_hmac_signature_over_the_body(self):
        from itsm_change_sdk.webhooks import hmac_sha256, verify_hmac_sha256

        good = hmac_sha256(b'{"a": 1}', "s3cret-value")
        verify_hmac_sha256(self.request({"X-Sig": good}), "X-Sig")
        with pytest.raises(WebhookRejected) as forged:
            verify_hmac_sha256(self.request({"X-Sig": good}, body=b'{"a": 2}'), "X-Sig")
        assert forged.value.status == 403
        with pytest.raises(WebhookRejected) as unsigned:
            verify_hmac_sha256(self.request({}), "X-Sig")
        assert unsigned.value.status == 401

    def test_shared_secret_and_no_secret_configured(self):
        from itsm_change_sdk.webhooks import verify_shared_secret

        verify_shared_secret(self.request({"x-itsm-change-secret": "s3cret-value"}),
                             "X-ITSM-Change-Secret")
        with pytest.raises(WebhookRejected) as wrong:
            verify_shared_secret(self.request({"X-ITSM-Change-Secret": "guess"}),
                                 "X-ITSM-Change-Secret")
        assert wrong.value.status == 403 and "s3cret-value" not in str(wrong.value)
        with pytest.raises(WebhookRejected, match="ITSM_CHANGE_ACME_WEBHOOK_SECRET") as none:
            verify_shared_secret(self.request({"X-ITSM-Change-Secret": "x"}, secret=None),
                                 "X-ITSM-Change-Secret")
        assert none.value.status == 401


class TestHttpTimeout:
    @pytest.mark.parametrize(("value", "expected"), [
        (None, (5.0, 30.0)), ("10", (10.0, 10.0)), ("5, 60", (5.0, 60.0)), (7, (7.0, 7.0))])
    def test_forms(self, value, expected):
        from itsm_change_sdk.config import http_timeout

        assert http_timeout("acme", {"timeout": value}) == expected

    @pytest.mark.parametrize("value", ["soon", "0", "1,2,3", "-5"])
    def test_bad_values_say_how_to_fix(self, value):
        from itsm_change_sdk.config import http_timeout

        with pytest.raises(ConfigurationError, match="ITSM_CHANGE_ACME_TIMEOUT"):
            http_timeout("acme", {"timeout": value})

    @pytest.mark.parametrize(("platform", "settings", "path"), [
        ("servicenow", {"instance_url": "https://acme.service-now.com", "username": "svc",
                        "password": "pw-value"}, "transport"),
        ("jira", {"site_url": "https://acme.atlassian.net", "email": "svc@acme.example",
                  "api_token": "tok-value", "project": "OPS"}, "api.transport"),
        ("freshservice", {"domain": "acme", "api_key": "key-value"}, "transport"),
    ])
    def test_every_platform_plugin_honours_it(self, platform, settings, path):
        from itsm_change_sdk.plugins import platform_registry

        pm = get_plugin_manager()
        if platform not in platform_registry(pm).specs:
            pytest.skip(f"the {platform} plugin is not installed")
        platforms = Platforms(pm)
        instance = platforms.enable(platform, {**settings, "timeout": "3,12"})
        for part in path.split("."):
            instance = getattr(instance, part)
        assert instance.timeout == (3.0, 12.0)
