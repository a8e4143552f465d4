"""The plugin reads its platform's documented error body itself."""

from __future__ import annotations

import pytest
import responses
from itsm_change_freshservice.api import error_body

from itsm_change_sdk.errors import InvalidRequest
from itsm_change_sdk.http import RetryPolicy, Transport

BASE = "https://acme.example.com"
URL = f"{BASE}/x"

CASES = {
    "servicenow": [
        ({"error": {"message": "Invalid table", "detail": "incidnt"}, "status": "failure"},
         "Invalid table", ["incidnt"]),
        ({"error": {"detail": "Negative offset is not supported"}, "status": "failure"},
         "Negative offset is not supported", []),
        ({"error": "access_denied", "error_description": "wrong secret"}, "access_denied", []),
    ],
    "jira": [
        ({"errorMessages": ["Field 'priority' is required"], "errors": {}},
         "Field 'priority' is required", []),
        ({"errorMessages": [], "errors": {"summary": "You must specify a summary."}},
         "summary: You must specify a summary.", []),
        ({"errorMessages": ["Issue does not exist"], "errors": {"labels": "too long"}},
         "Issue does not exist", ["labels: too long"]),
    ],
    "freshservice": [
        ({"description": "Validation failed",
          "errors": [{"field": "email", "message": "It should be a valid email address",
                      "code": "invalid_value"}]},
         "Validation failed", ["email: It should be a valid email address (invalid_value)"]),
        ({"code": "access_denied", "message": "You are not authorized to perform this action."},
         "You are not authorized to perform this action.", []),
    ],
}["freshservice"]


@pytest.mark.parametrize(("body", "message", "details"), CASES)
def test_the_platforms_error_body_is_read(body, message, details):
    transport = Transport("freshservice", BASE, policy=RetryPolicy(attempts=1),
                          error_parser=error_body)
    with responses.RequestsMock() as mock:
        mock.post(URL, status=400, json=body)
        with pytest.raises(InvalidRequest) as info:
            transport.request("POST", URL, json={})
    assert (info.value.message, info.value.details) == (message, details)


def test_a_body_that_is_not_json_keeps_the_http_reason():
    transport = Transport("freshservice", BASE, policy=RetryPolicy(attempts=1),
                          error_parser=error_body)
    with responses.RequestsMock() as mock:
        mock.post(URL, status=400, body="<html>Bad gateway page</html>")
        with pytest.raises(InvalidRequest) as info:
            transport.request("POST", URL, json={})
    assert info.value.message == "Bad Request"
