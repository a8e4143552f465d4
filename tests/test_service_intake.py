"""Webhook intake through the WSGI app: verification, size caps, de-duplication, answers."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from itsm_change_sdk import Workspace
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.sandbox.events import event_body, sign
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore
from itsm_change_sdk.service.app import ServiceApp
from itsm_change_sdk.service.codec import event_from_payload
from itsm_change_sdk.service.intake import Intake

SECRET = "whsec-sandbox-5f1e0c9a7b"
NOW = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)


def call(app, method, path, body=b"", headers=None, length="auto", query=""):
    """Call a WSGI app the way waitress does; returns (status, headers, json)."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
               "wsgi.input": io.BytesIO(body), "REMOTE_ADDR": "127.0.0.1"}
    if length == "auto":
        environ["CONTENT_LENGTH"] = str(len(body))
    elif length is not None:
        environ["CONTENT_LENGTH"] = length
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    seen = {}

    def start_response(status, response_headers):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(response_headers)

    data = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], json.loads(data)


def signed(body: dict | bytes, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {"Content-Type": "application/json", "X-Sandbox-Signature": sign(raw, secret)}


@pytest.fixture
def ws(tmp_path: Path):
    clock = SimClock(NOW)
    with Workspace(str(tmp_path / "ledger.db"), clock=clock) as workspace:
        store = SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}", clock=clock)
        workspace.platforms.add("sandbox", SandboxPlatform(store))
        yield workspace


@pytest.fixture
def woken():
    return []


@pytest.fixture
def app(ws, woken):
    intake = Intake(ws.platforms, ws.ledger, {"sandbox": SECRET}, clock=ws.clock,
                    on_recorded=lambda: woken.append(1))
    return ServiceApp(intake, lambda: (True, {"status": "ok"}), max_body=4096)


def ticket_event(event_id="ev-1", ticket="INC0001001"):
    return event_body("ticket_created", NOW, event_id=event_id, ticket=ticket)


class TestSandboxWebhook:
    def test_signed_event_is_recorded_before_the_answer(self, app, ws, woken):
        status, _, body = call(app, "POST", "/webhooks/sandbox", *signed(ticket_event()))
        assert status == 202 and body == {"recorded": 1, "duplicates": 0}
        assert ws.ledger.event_counts() == {"received": 1, "processed": 0, "dead": 0}
        assert woken == [1]
        [row] = ws.ledger.claim_events(10, NOW)
        event = event_from_payload(row.payload)
        assert (event.platform, event.event_id, event.ticket_id) == \
            ("sandbox", "ev-1", "INC0001001")
        assert event.needs_refresh

    def test_redelivery_is_acknowledged_and_recorded_once(self, app, ws, woken):
        first = call(app, "POST", "/webhooks/sandbox", *signed(ticket_event()))
        again = call(app, "POST", "/webhooks/sandbox", *signed(ticket_event()))
        assert first[0] == 202 and again[0] == 200
        assert again[2] == {"recorded": 0, "duplicates": 1}
        assert ws.ledger.event_counts()["received"] == 1
        assert woken == [1], "a duplicate does not wake the worker"

    def test_comment_event_keeps_the_comment(self, app, ws):
        payload = event_body("comment_added", NOW, event_id="ev-c", ticket="INC0001001",
                             comment_id="N0000007", author="u-0001",
                             text="#feedback aw=4 <b>bold</b>", internal=False)
        assert call(app, "POST", "/webhooks/sandbox", *signed(payload))[0] == 202
        [row] = ws.ledger.claim_events(10, NOW)
        comment = event_from_payload(row.payload).comment
        assert comment is not None and comment.text == "#feedback aw=4 <b>bold</b>"
        assert comment.created_at == NOW

    @pytest.mark.parametrize(("headers", "status"), [
        ({}, 401),
        ({"X-Sandbox-Signature": "sha256=" + "0" * 64}, 403),
        ({"X-Sandbox-Signature": "garbage"}, 403),
    ], ids=["unsigned", "forged", "garbage"])
    def test_unsigned_or_forged_is_refused_and_nothing_recorded(self, app, ws, headers,
                                                                status, caplog):
        raw = json.dumps(ticket_event()).encode()
        with caplog.at_level(logging.WARNING):
            got, _, body = call(app, "POST", "/webhooks/sandbox", raw, headers)
        assert got == status and "error" in body
        assert ws.ledger.event_counts()["received"] == 0
        assert any("rejected" in r.getMessage() for r in caplog.records)

    def test_signed_with_another_secret_is_forged(self, app, ws):
        status, _, _ = call(app, "POST", "/webhooks/sandbox",
                            *signed(ticket_event(), "not-the-secret"))
        assert status == 403 and ws.ledger.event_counts()["received"] == 0

    @pytest.mark.parametrize(("payload", "status"), [
        (b"{not json", 400),
        ({"id": "x", "event": "ticket_created"}, 400),
        ({"id": "x", "event": "ticket_exploded", "occurred_at": NOW.isoformat()}, 400),
    ], ids=["not-json", "missing-field", "unknown-event"])
    def test_malformed_is_refused(self, app, ws, payload, status):
        got, _, _ = call(app, "POST", "/webhooks/sandbox", *signed(payload))
        assert got == status and ws.ledger.event_counts()["received"] == 0

    def test_secrets_never_appear_in_answers_or_logs(self, app, caplog):
        raw = json.dumps(ticket_event()).encode()
        with caplog.at_level(logging.DEBUG):
            answers = [call(app, "POST", "/webhooks/sandbox", raw, h) for h in (
                {}, {"X-Sandbox-Signature": SECRET}, signed(ticket_event())[1])]
        text = json.dumps([a[2] for a in answers]) + caplog.text
        assert SECRET not in text
        assert sign(raw, SECRET) not in text


class TestLimitsAndRoutes:
    def test_declared_oversize_is_refused_unread(self, app, ws):
        body = b"x" * 5000
        status, headers, _ = call(app, "POST", "/webhooks/sandbox", *signed(body))
        assert status == 413 and headers.get("Connection") == "close"
        assert ws.ledger.event_counts()["received"] == 0

    def test_oversize_without_content_length_reads_at_most_the_cap(self, app):
        class Stream(io.BytesIO):
            served = 0

            def read(self, size=-1):
                chunk = super().read(size)
                Stream.served += len(chunk)
                return chunk

        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/sandbox",
                   "wsgi.input": Stream(b"y" * 100_000)}
        seen = []
        app(environ, lambda status, headers: seen.append(status))
        assert seen[0].startswith("413")
        assert Stream.served == 4097

    def test_short_body_is_refused(self, app):
        raw, headers = signed(ticket_event())
        status, _, _ = call(app, "POST", "/webhooks/sandbox", raw, headers,
                            length=str(len(raw) + 10))
        assert status == 400

    def test_bad_content_length(self, app):
        assert call(app, "POST", "/webhooks/sandbox", b"{}", {}, length="12x")[0] == 400

    def test_unknown_platform_and_path(self, app):
        assert call(app, "POST", "/webhooks/jira", *signed(ticket_event()))[0] == 404
        assert call(app, "POST", "/webhooks/", b"")[0] == 404
        assert call(app, "GET", "/admin", b"")[0] == 404

    def test_wrong_method(self, app):
        status, headers, _ = call(app, "GET", "/webhooks/sandbox")
        assert status == 405 and headers["Allow"] == "POST"
        assert call(app, "POST", "/healthz")[0] == 405

    def test_health(self, app):
        status, _, body = call(app, "GET", "/healthz")
        assert status == 200 and body == {"status": "ok"}

    def test_ledger_failure_is_not_acknowledged(self, ws, monkeypatch):
        from sqlalchemy.exc import OperationalError

        def broken(*args, **kwargs):
            raise OperationalError("insert", {}, Exception("disk I/O error"))

        intake = Intake(ws.platforms, ws.ledger, {"sandbox": SECRET}, clock=ws.clock)
        monkeypatch.setattr(intake.committer, "add", broken)
        app = ServiceApp(intake, lambda: (True, {}))
        status, _, body = call(app, "POST", "/webhooks/sandbox", *signed(ticket_event()))
        assert status == 503 and "retry" in body["error"]

    def test_platform_without_secret_refuses_everything(self, ws):
        intake = Intake(ws.platforms, ws.ledger, {"sandbox": None}, clock=ws.clock)
        app = ServiceApp(intake, lambda: (True, {}))
        assert call(app, "POST", "/webhooks/sandbox", *signed(ticket_event()))[0] == 401


# -- the platform plugins' real payload shapes ------------------------------------------


def plugin_app(ws, name, secret, **settings):
    ws.enable(name, webhook_secret=secret, **settings)
    intake = Intake(ws.platforms, ws.ledger, {name: secret}, clock=ws.clock)
    return ServiceApp(intake, lambda: (True, {}))


class TestServiceNowWebhook:
    SECRET = "sn-hook-secret-8c1d"

    @pytest.fixture
    def sn_app(self, ws):
        pytest.importorskip("itsm_change_servicenow")
        return plugin_app(ws, "servicenow", self.SECRET,
                          instance_url="https://example.service-now.com", auth="basic",
                          username="svc", password="pw-123456")

    def test_record_and_journal_events(self, sn_app, ws):
        record = {"kind": "record", "operation": "insert", "table": "incident",
                  "sys_id": "a" * 32, "number": "INC0010001",
                  "sys_updated_on": "2027-01-12 09:00:00", "sys_mod_count": "0",
                  "state": "1", "previous_state": "", "correlation_id": "",
                  "correlation_display": ""}
        journal = {"kind": "journal", "table": "incident", "sys_id": "a" * 32,
                   "sys_updated_on": "2027-01-12 09:05:00",
                   "entry": {"sys_id": "c" * 32, "element": "comments",
                             "value": "#feedback aw=4", "sys_created_on": "2027-01-12 09:05:00",
                             "sys_created_by": "alice", "author_id": "d" * 32}}
        headers = {"X-ITSM-Change-Secret": self.SECRET, "Content-Type": "application/json"}
        for payload in (record, journal, record):
            call(sn_app, "POST", "/webhooks/servicenow", json.dumps(payload).encode(), headers)
        assert ws.ledger.event_counts()["received"] == 2
        wrong = {**headers, "X-ITSM-Change-Secret": "nope"}
        assert call(sn_app, "POST", "/webhooks/servicenow", json.dumps(record).encode(),
                    wrong)[0] == 403
        assert call(sn_app, "POST", "/webhooks/servicenow", b'{"kind": "bogus"}',
                    headers)[0] == 422


class TestJiraWebhook:
    SECRET = "jira-hook-secret-77ab"

    @pytest.fixture
    def jira_app(self, ws):
        pytest.importorskip("itsm_change_jira")
        return plugin_app(ws, "jira", self.SECRET, site_url="https://example.atlassian.net",
                          auth="basic", email="svc@example.com", api_token="tok-123456",
                          project="CHG")

    def payload(self):
        fixture = Path(__file__).resolve().parents[1] / "plugins" / "jira" / "tests" / \
            "fixtures" / "webhook-comment-created.json"
        if not fixture.exists():
            pytest.skip("the Jira plugin's webhook fixtures are not in this checkout")
        return fixture.read_bytes()

    def test_signed_comment_event(self, jira_app, ws):
        body = self.payload()
        headers = {"X-Hub-Signature": sign(body, self.SECRET),
                   "X-Atlassian-Webhook-Identifier": "wh-42"}
        assert call(jira_app, "POST", "/webhooks/jira", body, headers)[0] == 202
        assert call(jira_app, "POST", "/webhooks/jira", body, headers)[0] == 200
        [row] = ws.ledger.claim_events(10, NOW)
        assert event_from_payload(row.payload).comment is not None
        forged = {**headers, "X-Hub-Signature": "sha256=" + "0" * 64}
        assert call(jira_app, "POST", "/webhooks/jira", body, forged)[0] == 403
        assert call(jira_app, "POST", "/webhooks/jira", body, {})[0] == 401


class TestFreshserviceWebhook:
    SECRET = "fs-hook-secret-3e9f"

    @pytest.fixture
    def fs_app(self, ws):
        pytest.importorskip("itsm_change_freshservice")
        return plugin_app(ws, "freshservice", self.SECRET,
                          domain="https://example.freshservice.com", api_key="key-123456")

    def test_trigger_needs_refresh(self, fs_app, ws):
        body = b'{"event": "ticket_created", "ticket_id": "42", "subject": "Printer "x""}'
        headers = {"X-ITSM-Change-Secret": self.SECRET}
        assert call(fs_app, "POST", "/webhooks/freshservice", body, headers)[0] == 202
        [row] = ws.ledger.claim_events(10, NOW)
        event = event_from_payload(row.payload)
        assert event.needs_refresh and event.ticket_id == "42"
        assert call(fs_app, "POST", "/webhooks/freshservice", body, {})[0] == 401
        assert call(fs_app, "POST", "/webhooks/freshservice",
                    b'{"event": "ticket_melted", "ticket_id": "1"}', headers)[0] == 422
