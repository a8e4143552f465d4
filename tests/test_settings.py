"""Plugin settings are declared once: the declaration types the values, names the setting in
every error, registers the platform, and is what ``plugins --settings`` and the READMEs show."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk.cli import cli
from itsm_change_sdk.errors import ConfigurationError
from itsm_change_sdk.plugins import PlatformRegistry, get_plugin_manager, platform_registry
from itsm_change_sdk.settings import PluginSettings, Setting

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("servicenow", "jira", "freshservice")

DEMO = PluginSettings("demo", (
    Setting("url", "where the demo lives", required=True),
    Setting("token", "the demo's token", secret=True),
    Setting("page_size", "rows per page", type=int, default=50),
    Setting("strict", "refuse unknown fields", type=bool, default=False),
    Setting("projects", "project keys", type=tuple),
    Setting("mode", "how to sign in", default="basic", choices=("basic", "oauth")),
))


class TestResolve:
    def test_values_are_typed_and_defaults_filled_in(self):
        values = DEMO.resolve({"url": "https://demo.example", "page_size": "20",
                               "strict": "yes", "projects": "OPS, IT,", "mode": "OAuth"})
        assert values == {"url": "https://demo.example", "token": None, "page_size": 20,
                          "strict": True, "projects": ("OPS", "IT"), "mode": "oauth"}
        assert DEMO.resolve({"url": "u"})["page_size"] == 50

    def test_a_missing_required_setting_says_where_to_set_it(self):
        with pytest.raises(ConfigurationError) as info:
            DEMO.resolve({"url": ""})
        message = str(info.value)
        assert "'url'" in message and "ITSM_CHANGE_DEMO_URL" in message
        assert "[platforms.demo]" in message

    @pytest.mark.parametrize("name, value, words", [
        ("page_size", "many", "must be integer"),
        ("strict", "perhaps", "must be true or false"),
        ("mode", "kerberos", "must be one of basic, oauth"),
    ])
    def test_a_wrong_value_names_the_setting(self, name, value, words):
        with pytest.raises(ConfigurationError, match=words) as info:
            DEMO.resolve({"url": "u", name: value})
        assert f"'{name}'" in str(info.value)
        assert f"ITSM_CHANGE_DEMO_{name.upper()}" in str(info.value)

    def test_a_secrets_wrong_value_is_never_echoed(self):
        declared = PluginSettings("demo", (Setting("pin", "a PIN", type=int, secret=True),))
        with pytest.raises(ConfigurationError) as info:
            declared.resolve({"pin": "hunter2"})
        assert "hunter2" not in str(info.value) and "'pin'" in str(info.value)

    def test_a_declaration_refuses_its_own_mistakes(self):
        with pytest.raises(TypeError, match="declared twice"):
            PluginSettings("demo", (Setting("a", "x"), Setting("a", "y")))
        with pytest.raises(TypeError, match="secret has no default"):
            Setting("token", "x", secret=True, default="changeme")
        with pytest.raises(TypeError, match="type must be"):
            Setting("when", "x", type=dict)


def test_registering_with_the_declaration_carries_names_and_secrets():
    registry = PlatformRegistry()
    registry.add("demo", lambda settings: object(), settings=DEMO)
    spec = registry.specs["demo"]
    assert spec.settings == DEMO.names and spec.secrets == ("token",)
    assert spec.declared is DEMO


@pytest.mark.parametrize("platform", SHIPPED)
def test_each_shipped_platform_registers_its_declaration(platform):
    declared = importlib.import_module(f"itsm_change_{platform}.settings").SETTINGS
    spec = platform_registry(get_plugin_manager()).specs[platform]
    assert spec.declared is declared
    assert all(s.help for s in declared), "every setting says what it is"
    assert "timeout" in declared.names


@pytest.mark.parametrize("platform", SHIPPED)
def test_each_plugin_readme_lists_exactly_the_declared_settings(platform):
    """The README's settings table and the declaration cannot drift apart."""
    declared = importlib.import_module(f"itsm_change_{platform}.settings").SETTINGS
    text = (ROOT / "plugins" / platform / "README.md").read_text()
    table = text[text.index("| Setting |"):]
    table = table[:table.index("\n\n")]
    listed = re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE)
    assert sorted(listed) == sorted(declared.names)
    for name in declared.secrets:
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert "secret" in row.lower() or "yes" in row.lower(), f"{name} is not marked secret"


def test_a_bad_value_in_a_plugins_settings_is_named():
    from itsm_change_servicenow.client import ServiceNowPlatform

    with pytest.raises(ConfigurationError, match="ITSM_CHANGE_SERVICENOW_PAGE_SIZE"):
        ServiceNowPlatform.from_settings({"instance_url": "https://acme.service-now.com",
                                          "username": "u", "password": "p",
                                          "page_size": "lots"})


class TestPluginsSettings:
    def test_every_declared_setting_is_listed_with_its_variable(self):
        result = CliRunner().invoke(cli, ["plugins", "--settings"])
        assert result.exit_code == 0, result.output
        assert "jira.site_url (text, required) ITSM_CHANGE_JIRA_SITE_URL: " in result.output
        assert "servicenow.page_size (integer, default 500) ITSM_CHANGE_SERVICENOW_PAGE_SIZE" \
            in result.output
        assert "freshservice.api_key (text, required, secret)" in result.output
        assert "sandbox.db (text) ITSM_CHANGE_SANDBOX_DB" in result.output

    def test_json_says_where_a_value_is_set_and_never_shows_one(self, monkeypatch):
        monkeypatch.setenv("ITSM_CHANGE_JIRA_API_TOKEN", "atl-secret-token-123")
        monkeypatch.setenv("ITSM_CHANGE_JIRA_PROJECT", "OPS-PROJECT-VALUE")
        outputs = {}
        for args in (["plugins", "--settings"], ["plugins", "--settings", "--json"]):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, result.output
            assert "atl-secret-token-123" not in result.output
            assert "OPS-PROJECT-VALUE" not in result.output
            outputs[len(args)] = result.output
        rows = json.loads(outputs[3])["settings"]
        token = next(r for r in rows if r["owner"] == "jira" and r["name"] == "api_token")
        assert token["secret"] and token["set_in"] == "environment"
        assert token["env"] == "ITSM_CHANGE_JIRA_API_TOKEN"
        assert not any(r["secret"] and r["default"] is not None for r in rows)


def test_a_credential_the_sign_in_mode_needs_is_named_with_how_to_set_it():
    from itsm_change_servicenow.client import ServiceNowPlatform

    with pytest.raises(ConfigurationError) as info:
        ServiceNowPlatform.from_settings({"instance_url": "https://acme.service-now.com",
                                          "auth": "oauth_client_credentials",
                                          "client_id": "abc"})
    message = str(info.value)
    assert "'client_secret'" in message and "ITSM_CHANGE_SERVICENOW_CLIENT_SECRET" in message
    assert "auth=oauth_client_credentials" in message
