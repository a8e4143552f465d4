"""Prompt and goal filters checked against the account before ``sync``: ticket types, the
ticket form's categories and agent groups, each with the closest values it holds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from itsm_change_sdk.model import CheckStatus, Prompt, TicketFilter
from itsm_change_sdk.testing.contract import _prompt_program

T0 = datetime(2027, 1, 11, 9, tzinfo=UTC)


def prompt(ident: str, **filter_values: tuple[str, ...]) -> Prompt:
    return Prompt(ident, ident.title(), TicketFilter(**filter_values), "Text.",
                  T0 - timedelta(days=1), T0 + timedelta(days=30))


def test_kinds_categories_and_groups_are_checked(platform, fake):
    fake.add_group("Service Desk", [])
    fake.add_ticket(title="Locked out", opened_at=T0, category="Password Reset")
    program = replace(_prompt_program("freshservice"), prompts=(
        prompt("kind", kinds=("request",)),
        prompt("category", categories=("Pasword Reset",)),
        prompt("group", groups=("Service Dsk",)),
        prompt("fine", kinds=("incident",), categories=("password reset",),
               groups=("service desk",))))
    checks = platform.itsm_change_check_filters(program=program)
    flagged = {c.message.split(":")[0]: c for c in checks if c.status is not CheckStatus.OK}
    assert set(flagged) == {"prompt 'kind'", "prompt 'category'", "prompt 'group'"}
    assert all(c.status is CheckStatus.FAIL for c in flagged.values())
    assert "'service request'" in flagged["prompt 'kind'"].fix
    assert "'Password Reset'" in flagged["prompt 'category'"].fix
    assert "'Service Desk'" in flagged["prompt 'group'"].fix
    assert fake.calls("GET", "/api/v2/ticket_form_fields")
