"""The shared HTTP plumbing every REST plugin relies on."""

from __future__ import annotations

import logging

import pytest
import requests
import responses
from responses import matchers, registries

from itsm_change_sdk.errors import (
    AuthenticationError,
    Conflict,
    ConnectError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    ResponseDecodeError,
    ServerError,
    TimeoutException,
)
from itsm_change_sdk.http import (
    BudgetPacer,
    KeyedLimiter,
    Redactor,
    RetryPolicy,
    Transport,
    create_once,
    paginate_link,
    paginate_offset,
    paginate_token,
    parse_rate_limit_reset,
    parse_retry_after,
    redact_url,
)

BASE = "https://acme.example.com"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def transport(sleeps: list[float]) -> Transport:
    return Transport("acme", BASE, auth=("svc", "hunter2-password"),
                     policy=RetryPolicy(attempts=4, sleep=sleeps.append),
                     secrets=["hunter2-password", "tok-SECRET-123"])


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def ordered_api():
    with responses.RequestsMock(registry=registries.OrderedRegistry) as mock:
        yield mock


class TestErrorMapping:
    @pytest.mark.parametrize(
        ("status", "cls", "retryable"),
        [(400, InvalidRequest, False), (401, AuthenticationError, False),
         (403, PermissionDenied, False), (404, NotFound, False), (410, InvalidRequest, False),
         (500, ServerError, True), (503, ServerError, True)],
        ids=str,
    )
    def test_status_maps_to_class_and_retryable_flag(self, api, status, cls, retryable):
        api.get(f"{BASE}/x", status=status, json={"error": {"message": "nope"}})
        transport = Transport("acme", BASE, policy=RetryPolicy(attempts=1))
        with pytest.raises(cls) as info:
            transport.request("GET", "/x")
        assert info.value.status_code == status
        assert info.value.retryable is retryable
        assert info.value.platform == "acme"

    @pytest.mark.parametrize(
        ("body", "message"),
        [({"message": "Invalid table"}, "Invalid table"),
         ({"error": "invalid_grant", "error_description": "expired"}, "invalid_grant"),
         ({"error": {"message": "Invalid table"}}, "Invalid table"),
         ({"errorMessages": ["only a plugin reads this shape"]}, "Bad Request")],
        ids=["message", "oauth", "error-message", "unknown-shape"],
    )
    def test_the_common_error_shapes_are_read(self, api, transport, body, message):
        """Platform-specific bodies are each plugin's ``error_body``; the core reads only the
        common shapes and otherwise keeps the HTTP reason."""
        api.post(f"{BASE}/x", status=400, json=body)
        with pytest.raises(InvalidRequest) as info:
            transport.request("POST", "/x", json={})
        assert info.value.message == message

    def test_a_plugins_parser_and_request_id_header_are_used(self, api):
        api.get(f"{BASE}/x", status=409, json={"why": "locked"},
                headers={"X-Acme-Request": "req-42"})
        transport = Transport("acme", BASE, policy=RetryPolicy(attempts=1),
                              error_parser=lambda r: (r.json()["why"], ["try later"]),
                              request_id_headers=("X-Acme-Request",))
        with pytest.raises(Conflict) as info:
            transport.request("GET", "/x")
        assert (info.value.message, info.value.details) == ("locked", ["try later"])
        assert info.value.request_id == "req-42"

    def test_html_login_page_is_a_decode_error(self, api, transport):
        api.get(f"{BASE}/x", body="<html><form>Log in</form></html>",
                content_type="text/html")
        response = transport.request("GET", "/x")
        with pytest.raises(ResponseDecodeError, match="expected JSON but got text/html"):
            transport.json(response)

    def test_secrets_never_reach_the_message(self, api, transport, caplog):
        api.get(f"{BASE}/x", status=401,
                json={"error": {"message": "bad token tok-SECRET-123 for svc"}})
        caplog.set_level(logging.DEBUG)
        with pytest.raises(AuthenticationError) as info:
            transport.request("GET", "/x", params={"token": "tok-SECRET-123"})
        text = str(info.value) + info.value.body + caplog.text
        assert "tok-SECRET-123" not in text
        assert "hunter2-password" not in text
        assert "***" in str(info.value)


class TestRetries:
    def test_429_waits_retry_after_then_succeeds(self, ordered_api, transport, sleeps):
        ordered_api.get(f"{BASE}/x", status=429, headers={"Retry-After": "7"}, json={})
        ordered_api.get(f"{BASE}/x", status=200, json={"ok": True})
        assert transport.json(transport.request("GET", "/x")) == {"ok": True}
        assert sleeps == [7.0]

    def test_retry_after_zero_means_soon_not_never(self, ordered_api, transport, sleeps):
        ordered_api.get(f"{BASE}/x", status=429, headers={"Retry-After": "0"}, json={})
        ordered_api.get(f"{BASE}/x", status=200, json={})
        transport.request("GET", "/x")
        assert sleeps == [0.25]

    def test_429_on_a_create_is_retried(self, ordered_api, transport):
        ordered_api.post(f"{BASE}/x", status=429, headers={"Retry-After": "1"}, json={})
        created = ordered_api.post(f"{BASE}/x", status=201, json={"id": 1})
        transport.request("POST", "/x", json={"a": 1})
        assert created.call_count == 1

    def test_503_on_a_create_is_not_resent(self, api, transport):
        create = api.post(f"{BASE}/x", status=503, json={})
        with pytest.raises(ServerError):
            transport.request("POST", "/x", json={"a": 1})
        assert create.call_count == 1

    def test_503_on_a_read_is_retried(self, ordered_api, transport, sleeps):
        ordered_api.get(f"{BASE}/x", status=503, json={})
        ordered_api.get(f"{BASE}/x", status=200, json={"ok": True})
        assert transport.json(transport.request("GET", "/x")) == {"ok": True}
        assert transport.calls == 2 and len(sleeps) == 1

    def test_one_500_on_a_listing_page_costs_a_retry_not_the_run(self, ordered_api,
                                                                 transport, sleeps):
        ordered_api.get(f"{BASE}/x", status=500, json={"error": {"message": "glitch"}})
        ordered_api.get(f"{BASE}/x", status=200, json={"ok": True})
        assert transport.json(transport.request("GET", "/x")) == {"ok": True}
        assert transport.calls == 2 and len(sleeps) == 1

    def test_500_on_a_search_marked_idempotent_is_retried(self, ordered_api, transport):
        ordered_api.post(f"{BASE}/search", status=500, json={})
        found = ordered_api.post(f"{BASE}/search", status=200, json={"issues": []})
        transport.request("POST", "/search", json={"jql": "x"}, idempotent=True)
        assert found.call_count == 1

    def test_500_on_a_create_is_not_resent(self, api, transport):
        create = api.post(f"{BASE}/x", status=500, json={})
        with pytest.raises(ServerError):
            transport.request("POST", "/x", json={"a": 1})
        assert create.call_count == 1

    def test_401_is_never_retried(self, api, transport):
        login = api.get(f"{BASE}/x", status=401, json={})
        with pytest.raises(AuthenticationError):
            transport.request("GET", "/x")
        assert login.call_count == 1

    def test_connect_error_is_retried_for_a_create(self, ordered_api, transport):
        ordered_api.post(f"{BASE}/x", body=requests.ConnectionError("refused"))
        ordered_api.post(f"{BASE}/x", status=201, json={"id": 7})
        assert transport.json(transport.request("POST", "/x", json={})) == {"id": 7}
        assert transport.calls == 2

    def test_read_timeout_on_a_create_is_uncertain(self, api, transport):
        api.post(f"{BASE}/x", body=requests.ReadTimeout("slow"))
        with pytest.raises(TimeoutException) as info:
            transport.request("POST", "/x", json={})
        assert not info.value.retryable

    def test_connect_timeout_is_the_safe_kind(self, api, transport):
        api.get(f"{BASE}/x", body=requests.ConnectTimeout("no route"))
        transport.policy = RetryPolicy(attempts=1)
        with pytest.raises(ConnectError):
            transport.request("GET", "/x")

    def test_gives_up_after_the_attempts(self, api, transport, sleeps):
        api.get(f"{BASE}/x", status=503, json={})
        with pytest.raises(ServerError):
            transport.request("GET", "/x")
        assert len(sleeps) == 3

    def test_a_storm_of_429s_is_waited_out_without_using_up_the_attempts(
            self, api, transport, sleeps):
        """429s are the platform pacing us: a burst of them longer than ``attempts`` is
        waited out as the platform asks, and the call succeeds."""
        for _ in range(6):
            api.get(f"{BASE}/x", status=429, headers={"Retry-After": "1"}, json={})
        api.get(f"{BASE}/x", json={"ok": True})
        assert transport.request("GET", "/x").json() == {"ok": True}
        assert sleeps == [1.0] * 6

    def test_endless_429s_give_up_after_the_rate_limited_attempts(self, api, transport, sleeps):
        api.get(f"{BASE}/x", status=429, headers={"Retry-After": "1"}, json={})
        with pytest.raises(RateLimited) as info:
            transport.request("GET", "/x")
        assert len(sleeps) == transport.policy.rate_limited_attempts - 1
        assert info.value.retry_after == 1.0


class TestCreateOnce:
    def test_a_timed_out_create_found_on_lookup_is_not_resent(self, api, transport):
        create = api.post(f"{BASE}/items", body=requests.ReadTimeout("slow"))
        lookup = api.get(f"{BASE}/items", json={"items": [{"id": 9, "key": "k1"}]},
                         match=[matchers.query_param_matcher({"key": "k1"})])

        def send():
            return transport.json(transport.request("POST", "/items", json={"key": "k1"}))

        def find():
            items = transport.get_json("/items", params={"key": "k1"})["items"]
            return items[0] if items else None

        assert create_once(send, find, transport.policy) == {"id": 9, "key": "k1"}
        assert create.call_count == 1 and lookup.call_count == 1

    def test_a_create_absent_on_lookup_is_sent_again(self, ordered_api, transport):
        ordered_api.post(f"{BASE}/items", body=requests.ReadTimeout("slow"))
        ordered_api.get(f"{BASE}/items", json={"items": []})
        ordered_api.post(f"{BASE}/items", status=201, json={"id": 10})

        def send():
            return transport.json(transport.request("POST", "/items", json={"key": "k1"}))

        def find():
            items = transport.get_json("/items")["items"]
            return items[0] if items else None

        assert create_once(send, find, transport.policy) == {"id": 10}

    def test_a_refused_create_is_not_looked_up(self, api, transport):
        api.post(f"{BASE}/items", status=400, json={"errorMessages": ["bad"], "errors": {}})
        with pytest.raises(InvalidRequest):
            create_once(lambda: transport.request("POST", "/items", json={}),
                        lambda: pytest.fail("no lookup after a clear refusal"), transport.policy)


class TestPacing:
    def test_full_speed_while_budget_is_plentiful(self):
        clock = [0.0]
        pacer = BudgetPacer("X-Ratelimit-Remaining", "X-Ratelimit-Total", clock=lambda: clock[0])
        pacer.after_response({"X-Ratelimit-Remaining": "150", "X-Ratelimit-Total": "200"}, 200)
        assert pacer.delay() == 0.0

    def test_spreads_the_last_fifth_over_the_window(self):
        clock = [0.0]
        pacer = BudgetPacer("X-Ratelimit-Remaining", "X-Ratelimit-Total", window=60,
                            clock=lambda: clock[0])
        pacer.after_response({"X-Ratelimit-Remaining": "30", "X-Ratelimit-Total": "200"}, 200)
        clock[0] = 30.0
        assert pacer.delay() == pytest.approx(30 / 30)

    def test_waits_for_the_reset_when_exhausted(self):
        clock = [0.0]
        pacer = BudgetPacer("X-RateLimit-Remaining", "X-RateLimit-Limit",
                            reset_header="X-RateLimit-Reset", clock=lambda: clock[0],
                            wall_clock=lambda: 1_700_000_000.0)
        pacer.after_response({"X-RateLimit-Remaining": "1", "X-RateLimit-Limit": "1000",
                              "X-RateLimit-Reset": "1700000045"}, 200)
        assert pacer.delay() == pytest.approx(45.0)

    def test_keyed_limiter_paces_one_key_only(self):
        clock = [0.0]
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            clock[0] += seconds

        limiter = KeyedLimiter(limit=2, per=2.0, clock=lambda: clock[0], sleep=sleep)
        limiter.acquire("OPS-1")
        limiter.acquire("OPS-1")
        limiter.acquire("OPS-2")
        assert sleeps == []
        limiter.acquire("OPS-1")
        assert sum(sleeps) == pytest.approx(2.0)


class TestHeaders:
    def test_retry_after_http_date(self):
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0

    @pytest.mark.parametrize(("value", "expected"),
                             [("1700000060", 60.0), ("2023-11-14T22:14Z", 40.0), ("30", 30.0)])
    def test_rate_limit_reset_forms(self, value, expected):
        assert parse_rate_limit_reset(value, now=1_700_000_000.0) == pytest.approx(
            expected, abs=1.0)


class TestPagination:
    def test_link_header_is_followed_to_the_end(self, api, transport):
        api.get(f"{BASE}/tickets", json={"tickets": [1, 2]},
                headers={"Link": f'<{BASE}/tickets?page=2>; rel="next"'},
                match=[matchers.query_param_matcher({"per_page": "2"})])
        api.get(f"{BASE}/tickets", json={"tickets": [3]},
                match=[matchers.query_param_matcher({"page": "2"})])
        items = paginate_link(transport, "/tickets", params={"per_page": 2},
                              extract=lambda body: body["tickets"])
        assert list(items) == [1, 2, 3]

    def test_token_pages_stop_without_a_token(self):
        pages = {None: ([1, 2], "t2"), "t2": ([3], None)}
        assert list(paginate_token(lambda token: pages[token])) == [1, 2, 3]

    def test_pages_are_fetched_lazily(self):
        fetched = []

        def fetch(token):
            fetched.append(token)
            return ([token or "first"], "next" if token is None else None)

        iterator = paginate_token(fetch)
        assert next(iterator) == "first"
        assert fetched == [None]


def test_redactor_hides_auth_headers_and_known_secrets():
    redact = Redactor(["s3cr3t-value"])
    text = redact("Authorization: Basic dXNlcjpwYXNz and s3cr3t-value")
    assert "dXNlcjpwYXNz" not in text and "s3cr3t-value" not in text


def test_redact_url_drops_userinfo_and_secret_params():
    url = redact_url("https://user:pw@acme.example.com/x?token=abc&limit=5")
    assert url == "https://acme.example.com/x?token=***&limit=5"


def test_offset_pages_stop_on_the_last_page():
    pages = {0: ([1, 2], False), 2: ([3, 4], False), 4: ([5], True)}
    starts = []

    def fetch(start):
        starts.append(start)
        return pages[start]

    assert list(paginate_offset(fetch)) == [1, 2, 3, 4, 5]
    assert starts == [0, 2, 4]
