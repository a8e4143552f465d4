"""OAuth 2.0 (3LO): rotating refresh tokens are persisted atomically before use."""

from __future__ import annotations

import json
import os
import stat

import pytest
import responses
from itsm_change_jira.auth import TOKEN_URL, TokenStore
from itsm_change_jira.client import JiraPlatform

from itsm_change_sdk.errors import ConfigurationError
from itsm_change_sdk.http import RetryPolicy

GATEWAY = "https://api.atlassian.com/ex/jira/cloud-123"


@pytest.fixture
def oauth_settings(tmp_path):
    return {"site_url": "https://acme.atlassian.net", "auth": "oauth", "client_id": "cid",
            "client_secret": "client-secret-value", "cloud_id": "cloud-123",
            "refresh_token": "refresh-1-value", "project": "OPS",
            "token_store": str(tmp_path / "tokens.json")}


def test_refresh_token_is_persisted_before_the_new_access_token_is_used(rsps, oauth_settings):
    store = TokenStore(oauth_settings["token_store"])
    seen_on_disk = []

    def token(request):
        body = json.loads(request.body)
        assert body["grant_type"] == "refresh_token"
        assert body["refresh_token"] == "refresh-1-value"
        return 200, {}, json.dumps({"access_token": "access-2-value", "expires_in": 3600,
                                    "refresh_token": "refresh-2-value", "scope": "read:jira"})

    def myself(request):
        seen_on_disk.append(store.load())
        assert request.headers["Authorization"] == "Bearer access-2-value"
        return 200, {}, json.dumps({"accountId": "a", "timeZone": "UTC"})

    rsps.add_callback("POST", TOKEN_URL, callback=token)
    rsps.add_callback("GET", f"{GATEWAY}/rest/api/3/myself", callback=myself)
    platform = JiraPlatform.from_settings(oauth_settings, policy=RetryPolicy(sleep=lambda s: None))
    platform.api.myself()
    assert seen_on_disk == ["refresh-2-value"]
    mode = stat.S_IMODE(os.stat(oauth_settings["token_store"]).st_mode)
    assert mode == 0o600
    assert [p.name for p in store.path.parent.iterdir()] == ["tokens.json"]
    assert "refresh-2-value" not in repr(platform) and "access-2" not in repr(platform.api.tokens)


def test_stored_token_wins_over_the_configured_one(rsps, oauth_settings):
    TokenStore(oauth_settings["token_store"]).save("refresh-stored")
    rsps.add(responses.POST, TOKEN_URL, json={"access_token": "a2", "refresh_token": "r3",
                                              "expires_in": 3600},
             match=[responses.matchers.json_params_matcher(
                 {"grant_type": "refresh_token", "client_id": "cid",
                  "client_secret": "client-secret-value", "refresh_token": "refresh-stored"})])
    rsps.add(responses.GET, f"{GATEWAY}/rest/api/3/myself", json={"accountId": "a"})
    platform = JiraPlatform.from_settings(oauth_settings, policy=RetryPolicy(sleep=lambda s: None))
    platform.api.myself()
    assert TokenStore(oauth_settings["token_store"]).load() == "r3"


def test_a_refused_access_token_is_refreshed_once_not_looped(rsps, oauth_settings):
    oauth_settings["access_token"] = "stale-access"
    rsps.add(responses.POST, TOKEN_URL, json={"access_token": "fresh", "refresh_token": "r2"})
    rsps.add(responses.GET, f"{GATEWAY}/rest/api/3/myself", status=401,
             json={"errorMessages": ["Unauthorized"], "errors": {}})
    rsps.add(responses.GET, f"{GATEWAY}/rest/api/3/myself", status=401,
             json={"errorMessages": ["Unauthorized"], "errors": {}})
    platform = JiraPlatform.from_settings(oauth_settings, policy=RetryPolicy(sleep=lambda s: None))
    from itsm_change_sdk.errors import AuthenticationError

    with pytest.raises(AuthenticationError) as info:
        platform.api.myself()
    assert len(rsps.calls) == 3
    assert "client-secret-value" not in str(info.value)


def test_missing_settings_say_how_to_fix(oauth_settings):
    del oauth_settings["cloud_id"]
    with pytest.raises(ConfigurationError, match=r"cloud_id|cloud id"):
        JiraPlatform.from_settings(oauth_settings)
    with pytest.raises(ConfigurationError, match="site_url must start with https"):
        JiraPlatform.from_settings({"site_url": "http://evil.example", "project": "OPS",
                                    "email": "a", "api_token": "b"})
