from __future__ import annotations

import sys
from pathlib import Path

import pytest
import responses

sys.path.insert(0, str(Path(__file__).parent))

from itsm_change_jira.client import JiraPlatform
from jira_fake import FakeJira
from jira_spec import load_validator

from itsm_change_sdk.http import KeyedLimiter, RetryPolicy


@pytest.fixture(scope="session")
def spec_validator():
    return load_validator()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def double(rsps, spec_validator):
    """The fake Jira site; every request is checked against the OpenAPI spec."""
    fake = FakeJira(rsps, validator=spec_validator)
    start = len(spec_validator.problems)
    yield fake
    problems = spec_validator.problems[start:]
    del spec_validator.problems[start:]
    assert problems == [], "requests outside Atlassian's OpenAPI spec"


@pytest.fixture
def settings(double):
    return dict(double.settings())


@pytest.fixture
def make_platform(double, sleeps):
    def make(**overrides):
        values = {**double.settings(), **overrides}
        return JiraPlatform.from_settings(
            values, policy=RetryPolicy(sleep=sleeps.append),
            limiter=KeyedLimiter(20, 2.0, sleep=sleeps.append),
        )

    return make


@pytest.fixture
def platform(make_platform):
    instance = make_platform()
    yield instance
    instance.close()
