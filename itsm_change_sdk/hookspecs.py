"""The contract between the core and plugins (pluggy project ``itsm_change``).

There are three kinds of hook:

* **Registration hooks**, implemented by a plugin *module* found through the ``itsm_change``
  entry-point group: ``itsm_change_register_platforms``, ``itsm_change_register_commands``,
  ``itsm_change_register_metric_kinds``.
* **Platform hooks**, implemented by a *platform instance*: the object a platform factory
  returns for one configured instance (one ServiceNow instance, one Jira site ...). The core
  registers each instance with the plugin manager and calls a platform hook on exactly one
  platform at a time, so a call about one platform's ticket never reaches another.
  They are ``firstresult`` hooks: the single platform's answer is the result.
* **Observer hooks**, implemented by anyone: they are broadcast to every plugin.

Every write a platform hook makes carries the effect's correlation key where the plugin can
find it again (``itsm_change_find_effects``). That is how the runner resolves an uncertain
failure without writing twice, so a plugin must never skip it.

Write hooks take the desired ``effects`` and ``known``: the records the ledger already holds
for some of their keys. A known key is updated in place; any other key is created. They
return one :class:`~itsm_change_sdk.model.EffectResult` per effect, in order; a failure of
one item is a failed result, an exception fails the whole call.

Hooks only ever gain arguments; a plugin may accept any subset of a hook's arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .model import (
        Check,
        Comment,
        Effect,
        EffectKind,
        EffectRef,
        EffectResult,
        FeedbackResponse,
        InstallStep,
        Person,
        Program,
        Prompt,
        Ticket,
        TicketEvent,
        TicketFilter,
        TrainingStatus,
        Unit,
        WebhookRequest,
    )
    from .plugins import MetricRegistry, PlatformRegistry

PROJECT_NAME = "itsm_change"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -- registration ----------------------------------------------------------------------------


@hookspec
def itsm_change_register_platforms(register: PlatformRegistry) -> None:
    """Register platform factories with ``register.add(name, factory, settings=...)``.

    The factory takes the resolved settings (a mapping) and returns a platform instance whose
    methods are the platform hooks below, marked with ``@hookimpl``.

    :param register: the registry; a name may be registered once.

    .. versionadded:: 0.1
    """


@hookspec
def itsm_change_register_commands(cli: click.Group) -> None:
    """Add commands to the ``itsm-change`` command line.

    :param cli: the top-level click group.

    .. versionadded:: 0.1
    """


@hookspec
def itsm_change_register_metric_kinds(register: MetricRegistry) -> None:
    """Contribute metric kinds that goals can name (``register.add(kind)``).

    :param register: the registry of :class:`itsm_change_sdk.metrics.MetricKind` objects.

    .. versionadded:: 0.1
    """


# -- platform: training ----------------------------------------------------------------------


@hookspec(firstresult=True)
def itsm_change_publish_training(
    effects: Sequence[Effect], known: Mapping[str, EffectRef]
) -> list[EffectResult]:
    """Create or update training assignments, one task per person.

    An effect whose key already exists on the platform is updated in place (due date, text).
    Use the platform's bulk endpoint where it has one.

    :param effects: training effects (``kind == "training"``), each with a ``recipient``.
    :return: one result per effect, in the same order.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def itsm_change_training_status(refs: Sequence[EffectRef]) -> list[TrainingStatus]:
    """Read back whether each training task is complete.

    :param refs: tasks published earlier.
    :return: one status per ref that still exists.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def itsm_change_retire_effects(refs: Sequence[EffectRef]) -> list[EffectResult]:
    """Retire records the program no longer wants (a removed module's open tasks, an
    announcement whose event was removed). Close or cancel rather than delete, so history
    stays; a record already gone counts as retired.

    .. versionadded:: 0.1
    """


# -- platform: communication -----------------------------------------------------------------


@hookspec(firstresult=True)
def itsm_change_deliver_communication(
    effects: Sequence[Effect], known: Mapping[str, EffectRef]
) -> list[EffectResult]:
    """Deliver communication effects on their channel (``effect.channel``): an announcement
    to ``audience_groups``, an acknowledgement task to ``recipient``, or a note on
    ``ticket_id``. Raise :class:`~itsm_change_sdk.errors.UnsupportedOperation` for a channel
    the platform lacks.

    :return: one result per effect, in the same order.

    .. versionadded:: 0.1
    """


# -- platform: feedback ----------------------------------------------------------------------


@hookspec(firstresult=True)
def itsm_change_request_feedback(
    effects: Sequence[Effect], known: Mapping[str, EffectRef]
) -> list[EffectResult]:
    """Ask each recipient for a survey answer (a task or request carrying the survey's
    instructions, or the platform's own survey where the plugin supports it).

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def itsm_change_find_comments(marker: str, since: datetime | None) -> Iterable[Comment]:
    """Comments and notes whose text contains ``marker``, created after ``since``.

    The core parses the marker syntax; the plugin only finds the comments, with the
    narrowest query its platform allows. Return an iterator to keep memory bounded. Leave out
    the notes the plugin wrote itself: survey requests quote the marker.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def itsm_change_collect_survey_answers(
    program: Program, since: datetime | None
) -> Iterable[FeedbackResponse]:
    """Answers collected by the platform's own survey feature, where the plugin supports it.

    .. versionadded:: 0.1
    """


# -- platform: prompts and tickets -----------------------------------------------------------


@hookspec(firstresult=True)
def itsm_change_find_tickets(
    filter: TicketFilter, since: datetime | None, open_only: bool
) -> Iterable[Ticket]:
    """Tickets matching ``filter``, updated after ``since``, oldest update first.

    Values from the filter must be quoted for the platform's query language so that no value
    can change the query.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def itsm_change_get_ticket(ticket_id: str) -> Ticket | None:
    """Re-read one ticket (a webhook is a hint; this is the truth).

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def itsm_change_post_prompts(
    effects: Sequence[Effect], known: Mapping[str, EffectRef]
) -> list[EffectResult]:
    """Post prompts as staff-only notes on ``effect.ticket_id`` (work note, internal comment,
    private note). The text is plain and must not be interpreted as markup.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def itsm_change_find_effects(kind: EffectKind, keys: Sequence[str]) -> list[EffectRef]:
    """Look correlation keys up on the platform: the records that carry them.

    Called after an uncertain failure and before any re-send. Keys not found are left out.
    The keys of notes (prompts, ``ticket_note`` messages) end with ``:<ticket id or number>``,
    so a plugin can search that record's notes.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def itsm_change_stream_tickets(since: datetime | None) -> Iterable[Ticket]:
    """Every ticket updated after ``since`` (all of them where ``since`` is None), oldest
    update first, as a lazy iterator over pages, for metrics and polling.

    .. versionadded:: 0.1
    """


# -- platform: directory ---------------------------------------------------------------------


@hookspec(firstresult=True)
def itsm_change_unit_members(unit: Unit) -> list[Person]:
    """The active people in ``unit.group`` plus ``unit.members``.

    .. versionadded:: 0.1
    """


# -- platform: admin and events --------------------------------------------------------------


@hookspec(firstresult=True)
def itsm_change_doctor() -> list[Check]:
    """Check the URL, the credentials and every permission the plugin needs; each failed
    check carries the fix in plain words.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def itsm_change_install(webhook_url: str | None, apply: bool, remove: bool) -> list[InstallStep]:
    """Describe, create (``apply``) or remove (``remove``) what the platform needs, such as
    the webhook that sends ticket events to ``itsm-change serve``.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def itsm_change_parse_webhook(request: WebhookRequest) -> list[TicketEvent]:
    """Verify and parse one webhook request into events.

    Raise :class:`~itsm_change_sdk.errors.WebhookRejected` with the status to answer for a
    forged, unsigned or malformed request. Compare secrets in constant time.

    .. versionadded:: 0.1
    """


# -- observers -------------------------------------------------------------------------------


@hookspec
def itsm_change_feedback_captured(program: Program, response: FeedbackResponse) -> None:
    """A feedback response was captured (once per response).

    .. versionadded:: 0.1
    """


@hookspec
def itsm_change_training_completed(program: Program, key: str, completed: bool) -> None:
    """A training assignment was completed (``completed``) or reopened.

    .. versionadded:: 0.1
    """


@hookspec
def itsm_change_communication_sent(program: Program, effect: Effect) -> None:
    """A communication was delivered (once per effect).

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def itsm_change_compose_prompt(prompt: Prompt, ticket: Ticket, text: str) -> str | None:
    """Return the text to post for ``prompt`` on ``ticket``, or None to keep ``text``.
    The first plugin to answer wins.

    .. versionadded:: 0.1
    """
