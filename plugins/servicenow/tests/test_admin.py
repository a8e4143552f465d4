"""OAuth, webhooks, doctor and install."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from itsm_change_servicenow import ServiceNowPlatform

from itsm_change_sdk.errors import AuthenticationError, WebhookRejected
from itsm_change_sdk.model import CheckStatus, TicketEventKind, WebhookRequest

CLIENT_SECRET = "cl1ent-s3cret-value"
PASSWORD = "s3cret-Passw0rd"


def oauth_platform(double, no_sleep, grant="oauth_password", secret=CLIENT_SECRET):
    settings = {**double.settings(), "auth": grant, "client_id": "cid",
                "client_secret": secret}
    platform = ServiceNowPlatform.from_settings(settings)
    platform.transport.policy = no_sleep
    auth = platform.transport.session.auth
    auth._clock = lambda: double.clock.timestamp()
    auth._transport.policy = no_sleep
    return platform


class TestOAuth:
    def test_token_request_is_form_encoded_and_used_as_bearer(self, double, no_sleep, rsps):
        platform = oauth_platform(double, no_sleep)
        assert list(platform.itsm_change_stream_tickets(None)) == []
        (token,) = double.token_requests
        assert token["content_type"] == "application/x-www-form-urlencoded"
        form = parse_qs(token["body"])
        assert form["grant_type"] == ["password"] and form["username"] == ["svc_itsm"]
        api_call = next(c for c in rsps.calls if "/api/now/table/" in c.request.url)
        assert api_call.request.headers["Authorization"].startswith("Bearer ")

    def test_refreshed_before_expiry_with_the_refresh_token(self, double, no_sleep):
        platform = oauth_platform(double, no_sleep)
        list(platform.itsm_change_stream_tickets(None))
        double.clock += timedelta(seconds=1799 - 30)
        list(platform.itsm_change_stream_tickets(None))
        grants = [parse_qs(t["body"])["grant_type"][0] for t in double.token_requests]
        assert grants == ["password", "refresh_token"]

    def test_client_credentials(self, double, no_sleep):
        platform = oauth_platform(double, no_sleep, grant="oauth_client_credentials")
        list(platform.itsm_change_stream_tickets(None))
        form = parse_qs(double.token_requests[0]["body"])
        assert form["grant_type"] == ["client_credentials"] and "password" not in form

    def test_refused_secret_never_appears_in_the_error(self, double, no_sleep):
        wrong = "wr0ng-client-secret"
        platform = oauth_platform(double, no_sleep, secret=wrong)
        with pytest.raises(AuthenticationError) as info:
            list(platform.itsm_change_stream_tickets(None))
        text = f"{info.value}{info.value!r}{info.value.body}{info.value.url}"
        assert wrong not in text and PASSWORD not in text
        assert wrong not in repr(platform.transport.session.auth)


def hook(body, secret="hook-s3cret-value"):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-ITSM-Change-Secret"] = secret
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(platform="servicenow", headers=headers, body=raw,
                          secret="hook-s3cret-value")


RECORD = {"kind": "record", "operation": "update", "table": "vtb_task", "sys_id": "a" * 32,
          "number": "VTB0000001", "sys_updated_on": "2025-03-05 10:00:00", "sys_mod_count": "3",
          "state": "3", "previous_state": "1", "correlation_id": "chg:p:training:m:x",
          "correlation_display": "itsm_change_sdk"}


class TestWebhook:
    @pytest.mark.parametrize(("secret", "status"), [(None, 401), ("nope", 403)],
                             ids=["missing", "wrong"])
    def test_secret_is_checked(self, platform, secret, status):
        with pytest.raises(WebhookRejected) as info:
            platform.itsm_change_parse_webhook(hook(RECORD, secret))
        assert info.value.status == status

    @pytest.mark.parametrize(("body", "status"), [
        (b"{not json", 400), ({"kind": "record", "table": "incident"}, 400),
        ({"kind": "bogus"}, 422)], ids=["json", "fields", "kind"])
    def test_malformed(self, platform, body, status):
        with pytest.raises(WebhookRejected) as info:
            platform.itsm_change_parse_webhook(hook(body))
        assert info.value.status == status

    def test_task_completed_and_reopened_carry_the_key(self, platform):
        (done,) = platform.itsm_change_parse_webhook(hook(RECORD))
        assert done.kind is TicketEventKind.TASK_COMPLETED
        assert done.effect_key == "chg:p:training:m:x"
        reopened = {**RECORD, "state": "1", "previous_state": "3", "sys_mod_count": "4"}
        (event,) = platform.itsm_change_parse_webhook(hook(reopened))
        assert event.kind is TicketEventKind.TASK_REOPENED and event.event_id != done.event_id

    def test_ticket_created_is_a_hint(self, platform):
        body = {**RECORD, "table": "incident", "operation": "insert", "correlation_id": "",
                "correlation_display": ""}
        (event,) = platform.itsm_change_parse_webhook(hook(body))
        assert event.kind is TicketEventKind.TICKET_CREATED and event.needs_refresh

    def test_journal_entry_is_a_comment(self, platform):
        body = {"kind": "journal", "table": "incident", "sys_id": "b" * 32,
                "sys_updated_on": "2025-03-05 10:00:00",
                "entry": {"sys_id": "c" * 32, "element": "comments", "value": "#feedback a=4",
                          "sys_created_on": "2025-03-05 10:00:00", "sys_created_by": "alice",
                          "author_id": "d" * 32}}
        (event,) = platform.itsm_change_parse_webhook(hook(body))
        assert event.kind is TicketEventKind.COMMENT_ADDED
        assert event.comment.author == "d" * 32 and not event.comment.internal
        assert event.comment.created_at == datetime(2025, 3, 5, 10, tzinfo=UTC)


class TestDoctor:
    def test_all_good(self, platform, double):
        role = double.insert("sys_user_role", {"name": "itil"})
        double.insert("sys_user_has_role", {"user": double.api_user.id, "role": role["sys_id"]})
        checks = platform.itsm_change_doctor()
        failed = [c for c in checks if c.status is not CheckStatus.OK]
        assert failed == [], failed
        (access,) = [c for c in checks if c.name == "write access"]
        assert access.message == "roles: itil"

    def test_roles_unchecked_without_the_users_own_record_is_a_warning(self, platform, double):
        del double.tables["sys_user"][double.api_user.id]
        checks = {c.name: c for c in platform.itsm_change_doctor()}
        assert checks["write access"].status is CheckStatus.WARN
        assert "roles not checked" in checks["write access"].message

    def test_missing_column_has_a_fix(self, double, no_sleep):
        platform = ServiceNowPlatform.from_settings(
            {**double.settings(), "correlation_field": "u_missing"})
        platform.transport.policy = no_sleep
        checks = {c.name: c for c in platform.itsm_change_doctor()}
        assert checks["columns vtb_task"].status is CheckStatus.FAIL
        assert "u_missing" in checks["columns vtb_task"].message

    def test_refused_credentials(self, platform, double):
        double.errors.append((401, {"error": {"message": "User Not Authenticated",
                                              "detail": ""}, "status": "failure"}))
        checks = {c.name: c for c in platform.itsm_change_doctor()}
        assert checks["credentials"].status is CheckStatus.FAIL and checks["credentials"].fix

    def test_html_login_page(self, platform, double):
        double.errors.append((200, "<html><body>Log in</body></html>"))
        (check,) = platform.itsm_change_doctor()
        assert check.name == "url" and check.status is CheckStatus.FAIL
        assert "https://<instance>.service-now.com" in check.fix

    def test_an_html_bad_gateway_names_the_instance_and_what_to_do(self, platform, double):
        page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
        double.errors.extend([(502, page)] * 10)
        (check,) = platform.itsm_change_doctor()
        assert check.name == "url" and check.status is CheckStatus.FAIL
        assert "502" in check.message and "HTML" in check.message
        assert "hibernat" in check.message and "developer.servicenow.com" in check.fix

    def test_a_refused_read_of_its_own_record_is_a_permission_not_the_url(self, platform,
                                                                          double):
        double.errors.append((403, {"error": {"message": "User Not Authorized",
                                              "detail": "ACL Exception"}, "status": "failure"}))
        checks = {c.name: c for c in platform.itsm_change_doctor()}
        assert checks["url"].status is CheckStatus.OK
        assert checks["credentials"].status is CheckStatus.OK
        assert checks["permission"].status is CheckStatus.FAIL
        assert "itil" in checks["permission"].fix


class TestInstall:
    def test_describe_then_apply_then_remove(self, platform, double):
        url = "https://hooks.example.com/webhooks/servicenow"
        steps = platform.itsm_change_install(url, apply=False, remove=False)
        assert not any(s.done for s in steps)
        script = next(s for s in steps if s.name == "itsm-change: task events").instructions
        assert "X-ITSM-Change-Secret" in script and "hook-s3cret-value" not in script

        steps = platform.itsm_change_install(url, apply=True, remove=False)
        assert all(s.done for s in steps)
        assert len(double.tables["sys_script"]) == 2
        assert all("hook-s3cret-value" not in s.message for s in steps)

        platform.itsm_change_install(url, apply=False, remove=True)
        assert not double.tables["sys_script"] and not double.tables["sys_rest_message"]
