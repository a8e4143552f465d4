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
  Most are **required** (:data:`REQUIRED_PLATFORM_HOOKS`): the core refuses to register a
  platform instance that lacks one, naming it, because a missing answer would otherwise read
  as "nothing to do". The others (:data:`OPTIONAL_PLATFORM_HOOKS`) are features a platform
  may not have; the core asks whether an instance implements them before calling.
* **Observer hooks**, implemented by anyone: they are broadcast to every plugin.

Every write a platform hook makes carries the effect's correlation key where the plugin can
find it again (``itsm_change_find_effects``). That is how the runner resolves an uncertain
failure without writing twice, so a plugin must never skip it.

Write hooks take the desired ``effects`` and ``known``: the records the ledger already holds
for some of their keys. A known key is updated in place; any other key is created. They
return one :class:`~itsm_change_sdk.model.EffectResult` per effect, in order; a failure of
one item is a failed result, an exception fails the whole call.

What a hook may raise is part of its contract, and each docstring says it: a platform hook
lets an :class:`~itsm_change_sdk.errors.APIError` from the HTTP layer through (the call
fails, and the caller reports it and tries again on its next run), raises
:class:`~itsm_change_sdk.errors.ConfigurationError` for a setting or program value that must
be fixed, and never a bare exception; an observer catches its own errors.

Hooks only ever gain arguments; a plugin may accept any subset of a hook's arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

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
    from .plugins import ChannelRegistry, MetricRegistry, PlatformRegistry

PROJECT_NAME = "itsm_change"


class ChannelDelivery(Protocol):
    """A channel that delivers communications itself (``Addressing.AUDIENCE``): one built
    from its settings by the factory given to ``register.add``."""

    def deliver(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        """Deliver each effect; a key in ``known`` was delivered before (update it where
        the channel can, or leave it). One result per effect, in order.

        :raises ~itsm_change_sdk.errors.ITSMError: the whole call failed (configuration,
            credentials); the runner records every effect of the call as not written.
        """
        ...

    def find_effects(self, keys: Sequence[str]) -> list[EffectRef]:
        """The deliveries of ``keys`` the channel can still see, after a lost answer; a
        channel that cannot look anything up returns ``[]`` (the effect is sent again)."""
        ...

    def close(self) -> None:
        """Release connections; called when the workspace closes."""
        ...


class EventForwarder(Protocol):
    """Posts a platform's pending events to the event service's webhook, signed.

    For a platform that cannot call a webhook itself (the sandbox: its staff actions are rows
    in a local database). ``itsm-change serve`` polls :meth:`forward_once` in a thread.
    """

    batch: int
    """The most events one :meth:`forward_once` sends; a full batch is polled again at once."""

    def forward_once(self, now: datetime) -> int:
        """Send what is pending, oldest first, and return how many were sent. Stop at the
        first failure and keep it for the next call (delivery is at least once)."""
        ...

    def close(self) -> None:
        """Release connections; called once when the service stops."""
        ...

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

_Spec = TypeVar("_Spec", bound=Callable[..., Any])

PLATFORM_HOOKS: dict[str, bool] = {}
"""Every platform hook, mapped to whether a platform must implement it."""


def _platform_hook(*, required: bool = True) -> Callable[[_Spec], _Spec]:
    """Declare a platform hook: ``firstresult``, and recorded as required or optional."""

    def declare(spec: _Spec) -> _Spec:
        PLATFORM_HOOKS[spec.__name__] = required
        marked: _Spec = hookspec(firstresult=True)(spec)
        return marked

    return declare


# -- registration ----------------------------------------------------------------------------


@hookspec
def itsm_change_register_platforms(register: PlatformRegistry) -> None:
    """Register platform factories with ``register.add(name, factory, settings=...)``.

    The factory takes the resolved settings (a mapping) and returns a platform instance whose
    methods are the platform hooks below, marked with ``@hookimpl``.

    :param register: the registry; a name may be registered once.
    :raises ~itsm_change_sdk.errors.PluginError: from ``register.add``, for a name registered
        twice. An instance lacking a required platform hook is refused later, when enabled.

    .. versionadded:: 0.1
    """


@hookspec
def itsm_change_register_commands(cli: click.Group) -> None:
    """Add commands to the ``itsm-change`` command line.

    :param cli: the top-level click group; add with ``cli.add_command(...)``.
    :raises nothing: a command's own errors are its business; raise ``click.ClickException``
        (or an :class:`~itsm_change_sdk.errors.ITSMError`) from the command for a plain message.

    .. versionadded:: 0.1
    """


@hookspec
def itsm_change_register_channels(register: ChannelRegistry) -> None:
    """Contribute channels that communications can name (``channel: <name>``)::

        register.add("slack", Addressing.AUDIENCE, "a message in a Slack channel",
                     factory=SlackChannel.from_settings, settings=("webhook_url",),
                     secrets=("webhook_url",))

    A channel a platform delivers (``PERSON``, ``GROUPS`` or ``RECORD`` addressing) reaches
    each platform's ``itsm_change_deliver_communication``; one with ``AUDIENCE`` addressing
    is delivered by the :class:`ChannelDelivery` its ``factory`` builds from its settings
    (``[platforms.<name>]`` in the config file, or ``ITSM_CHANGE_<NAME>_<KEY>``).

    :param register: the registry; a name may be registered once.
    :raises ~itsm_change_sdk.errors.PluginError: from ``register.add``, for a name registered
        twice or an ``AUDIENCE`` channel without a factory.

    .. versionadded:: 0.2
    """


@hookspec
def itsm_change_register_metric_kinds(register: MetricRegistry) -> None:
    """Contribute metric kinds that goals can name (``register.add(kind)``).

    :param register: the registry of :class:`itsm_change_sdk.metrics.MetricKind` objects.
    :raises ~itsm_change_sdk.errors.PluginError: from ``register.add``, for a kind registered
        twice.

    .. versionadded:: 0.1
    """


# -- platform: training ----------------------------------------------------------------------


@_platform_hook()
def itsm_change_publish_training(
    effects: Sequence[Effect], known: Mapping[str, EffectRef]
) -> list[EffectResult]:
    """Create or update training assignments, one task per person.

    An effect whose key already exists on the platform is updated in place (due date, text).
    Use the platform's bulk endpoint where it has one.

    :param effects: training effects (``kind == "training"``), each with a ``recipient``
        (a person whose ``id`` is the platform's user id), a ``title``, a plain-text ``body``
        and a ``due`` date.
    :param known: for keys the ledger already holds, where the record is: update it in place.
        Any other key is created (with the key stored where :func:`itsm_change_find_effects`
        finds it).
    :return: one result per effect, in the same order; a failure of one item is a failed
        result (``uncertain`` when it may have been applied).
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached
        (``AuthenticationError``, ``PermissionDenied``, ``RateLimited`` after retries ...);
        the whole call fails and the runner records every effect as not written.
    :raises ~itsm_change_sdk.errors.ConfigurationError: a setting the call needs is wrong.

    .. versionadded:: 0.1
    """


@_platform_hook()
def itsm_change_training_status(refs: Sequence[EffectRef]) -> list[TrainingStatus]:
    """Read back whether each training task is complete.

    :param refs: tasks published earlier (from the ledger), at most 100 per call.
    :return: one status per ref that still exists; a deleted task is left out.
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached;
        the caller reports it and tries again on its next run.

    .. versionadded:: 0.1
    """


@_platform_hook()
def itsm_change_retire_effects(refs: Sequence[EffectRef]) -> list[EffectResult]:
    """Retire records the program no longer wants (a removed module's open tasks, an
    announcement whose event was removed). Close or cancel rather than delete, so history
    stays; a record already gone counts as retired.

    :param refs: the records to retire (training tasks, acknowledgement tasks, announcements).
    :return: one result per ref, in the same order.
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached
        (``AuthenticationError``, ``PermissionDenied``, ``RateLimited`` after retries ...);
        the whole call fails and the runner records every effect as not written.
    :raises ~itsm_change_sdk.errors.ConfigurationError: a setting the call needs is wrong.

    .. versionadded:: 0.1
    """


# -- platform: communication -----------------------------------------------------------------


@_platform_hook()
def itsm_change_deliver_communication(
    effects: Sequence[Effect], known: Mapping[str, EffectRef]
) -> list[EffectResult]:
    """Deliver communication effects on their channel (``effect.channel``): an announcement
    to ``audience_groups``, an acknowledgement task to ``recipient``, or a note on
    ``ticket_id``.

    :param effects: message effects (``kind == "message"``) on a channel the platforms
        deliver (``announcement`` between ``visible_from`` and ``visible_until``, ``task`` for
        ``recipient``, ``ticket_note`` on ``ticket_id``, or a plugin channel with the same
        addressing).
    :param known: keys delivered before; an announcement still visible is updated in place.
    :return: one result per effect, in the same order.
    :raises ~itsm_change_sdk.errors.UnsupportedOperation: a channel the platform lacks.
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached
        (``AuthenticationError``, ``PermissionDenied``, ``RateLimited`` after retries ...);
        the whole call fails and the runner records every effect as not written.
    :raises ~itsm_change_sdk.errors.ConfigurationError: a setting the call needs is wrong.

    .. versionadded:: 0.1
    """


# -- platform: feedback ----------------------------------------------------------------------


@_platform_hook()
def itsm_change_request_feedback(
    effects: Sequence[Effect], known: Mapping[str, EffectRef]
) -> list[EffectResult]:
    """Ask each recipient for a survey answer (a task or request carrying the survey's
    instructions, or the platform's own survey where the plugin supports it).

    :param effects: feedback requests (``kind == "feedback_request"``), each with a
        ``recipient``, a body that quotes the feedback marker, and ``meta["survey"]``.
    :param known: keys requested before: update in place.
    :return: one result per effect, in the same order.
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached
        (``AuthenticationError``, ``PermissionDenied``, ``RateLimited`` after retries ...);
        the whole call fails and the runner records every effect as not written.
    :raises ~itsm_change_sdk.errors.ConfigurationError: a setting the call needs is wrong.

    .. versionadded:: 0.1
    """


@_platform_hook()
def itsm_change_find_comments(marker: str, since: datetime | None) -> Iterable[Comment]:
    """Comments and notes whose text contains ``marker``, created after ``since``.

    The core parses the marker syntax; the plugin only finds the comments, with the
    narrowest query its platform allows. Return an iterator to keep memory bounded. Leave out
    the notes the plugin wrote itself: survey requests quote the marker.

    :param marker: the program's feedback marker, e.g. ``#feedback``.
    :param since: only comments created after this time; None for all of them.
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached;
        the caller reports it and tries again on its next run.

    .. versionadded:: 0.1
    """


@_platform_hook(required=False)
def itsm_change_collect_survey_answers(
    program: Program, since: datetime | None
) -> Iterable[FeedbackResponse]:
    """Answers collected by the platform's own survey feature, where the plugin supports it.

    Optional: implement it only where the platform exposes survey answers.

    :param program: the program whose surveys (``program.surveys``) the answers belong to.
    :param since: only answers submitted after this time; None for all of them.
    :return: one response per answer, each with a stable ``id`` (it is recorded once).
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached;
        the caller reports it and tries again on its next run.

    .. versionadded:: 0.1
    """


# -- platform: prompts and tickets -----------------------------------------------------------


@_platform_hook()
def itsm_change_find_tickets(
    filter: TicketFilter, since: datetime | None, open_only: bool
) -> Iterable[Ticket]:
    """Tickets matching ``filter``, updated after ``since``, oldest update first.

    Values from the filter must be quoted for the platform's query language so that no value
    can change the query.

    :param filter: the prompt's or goal's ticket filter (kinds, categories, services, groups,
        channels, priorities; empty fields match anything).
    :param since: only tickets updated after this time; None for all of them.
    :param open_only: leave out resolved and closed tickets.
    :raises ~itsm_change_sdk.errors.ITSMError: a value the query language cannot carry safely
        may be refused instead of quoted.
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached;
        the caller reports it and tries again on its next run.

    .. versionadded:: 0.1
    """


@_platform_hook()
def itsm_change_get_ticket(ticket_id: str) -> Ticket | None:
    """Re-read one ticket (a webhook is a hint; this is the truth).

    :param ticket_id: the platform's id or number of the ticket.
    :return: the ticket, or None when it does not exist (any more).
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached;
        the caller reports it and tries again on its next run.

    .. versionadded:: 0.1
    """


@_platform_hook()
def itsm_change_post_prompts(
    effects: Sequence[Effect], known: Mapping[str, EffectRef]
) -> list[EffectResult]:
    """Post prompts as staff-only notes on ``effect.ticket_id`` (work note, internal comment,
    private note). The text is plain and must not be interpreted as markup.

    :param effects: prompt effects (``kind == "prompt"``), one per ticket, whose keys end with
        the ticket's id.
    :param known: keys posted before: leave the note, or update it in place.
    :return: one result per effect, in the same order.
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached
        (``AuthenticationError``, ``PermissionDenied``, ``RateLimited`` after retries ...);
        the whole call fails and the runner records every effect as not written.
    :raises ~itsm_change_sdk.errors.ConfigurationError: a setting the call needs is wrong.

    .. versionadded:: 0.1
    """


@_platform_hook()
def itsm_change_find_effects(kind: EffectKind, keys: Sequence[str]) -> list[EffectRef]:
    """Look correlation keys up on the platform: the records that carry them.

    Called after an uncertain failure and before any re-send. Keys not found are left out.
    The keys of notes (prompts, ``ticket_note`` messages) end with ``:<ticket id or number>``,
    so a plugin can search that record's notes.

    :param kind: the kind of every key (training, message, feedback request or prompt).
    :param keys: correlation keys, at most 100 per call.
    :return: a ref for each key found on the platform.
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached;
        the caller reports it and tries again on its next run.

    .. versionadded:: 0.1
    """


@_platform_hook()
def itsm_change_stream_tickets(since: datetime | None) -> Iterable[Ticket]:
    """Every ticket updated after ``since`` (all of them where ``since`` is None), oldest
    update first, as a lazy iterator over pages, for metrics and polling.

    :param since: only tickets updated after this time; None for all of them.
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached;
        the caller reports it and tries again on its next run.

    .. versionadded:: 0.1
    """


# -- platform: directory ---------------------------------------------------------------------


@_platform_hook()
def itsm_change_unit_members(unit: Unit) -> list[Person]:
    """The active people in ``unit.group`` plus ``unit.members``.

    :param unit: the unit; ``group`` names a platform group, ``members`` lists people by
        user id or email.
    :return: each person once.
    :raises ~itsm_change_sdk.errors.ConfigurationError: the group or a member does not exist
        (say which, and how to fix the program).
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached;
        the caller reports it and tries again on its next run.

    .. versionadded:: 0.1
    """


# -- platform: admin and events --------------------------------------------------------------


@_platform_hook()
def itsm_change_doctor() -> list[Check]:
    """Check the URL, the credentials and every permission the plugin needs; each failed
    check carries the fix in plain words.

    :return: the checks, failed ones included; a failure is a check, not an exception.
    :raises nothing: every problem found is reported as a failed check.

    .. versionadded:: 0.1
    """


@_platform_hook(required=False)
def itsm_change_check_filters(program: Program) -> list[Check]:
    """Check the ticket filters of ``program``'s prompts and goals that apply to this
    platform against what the platform holds (issue types, categories by value and label,
    the fields a filter needs), so a value that would make a query fail or match nothing is
    found before ``sync``, with what to change. Used by ``validate --platform`` and
    ``doctor --program``.

    Optional: implement it where the platform can list the values its filters accept.

    :param program: the program whose filters are checked (``program.prompts`` and
        ``program.goals``; each filter's ``platform`` says where it applies, none for all).
    :return: one check per problem found, naming the prompt or goal, the field and the
        value, with the closest valid values in its fix; an ``ok`` check when all is well.
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached.

    .. versionadded:: 0.3
    """


@_platform_hook()
def itsm_change_install(webhook_url: str | None, apply: bool, remove: bool) -> list[InstallStep]:
    """Describe, create (``apply``) or remove (``remove``) what the platform needs, such as
    the webhook that sends ticket events to ``itsm-change serve``.

    :param webhook_url: where ``serve`` listens for this platform, or None when not known.
    :param apply: create what is missing (otherwise only describe it: no writes).
    :param remove: remove what an earlier ``apply`` created.
    :return: one step per thing needed, with instructions where an admin must act by hand.
    :raises ~itsm_change_sdk.errors.APIError: the platform refused or could not be reached
        (``AuthenticationError``, ``PermissionDenied``, ``RateLimited`` after retries ...);
        the whole call fails and the runner records every effect as not written.
    :raises ~itsm_change_sdk.errors.ConfigurationError: a setting the call needs is wrong.

    .. versionadded:: 0.1
    """


@_platform_hook(required=False)
def itsm_change_event_forwarder(webhook_url: str, secret: str) -> EventForwarder:
    """For a platform whose events no webhook delivers: a forwarder that posts them to
    ``webhook_url`` signed with ``secret``, as the platform's own webhook would, so that
    :func:`itsm_change_parse_webhook` reads them like any other platform's.

    :param webhook_url: this service's ``/webhooks/<platform>`` URL.
    :param secret: the platform's ``webhook_secret`` setting, or a per-process secret that
        ``serve`` generates when none is set.
    :return: the forwarder; ``serve`` closes it when it stops.
    :raises ~itsm_change_sdk.errors.ConfigurationError: the platform's store cannot be
        opened; ``serve`` does not start. Errors of ``forward_once`` are logged and retried.

    .. versionadded:: 0.2
    """


@_platform_hook()
def itsm_change_parse_webhook(request: WebhookRequest) -> list[TicketEvent]:
    """Verify and parse one webhook request into events.

    Compare secrets in constant time.

    :param request: the request as received, with the platform's ``webhook_secret``.
    :return: the events it carries, each with a stable ``event_id``; an empty list for an
        event type the core does not use.
    :raises ~itsm_change_sdk.errors.WebhookRejected: with the status to answer for a forged
        (403), unsigned (401) or malformed (400) request.

    .. versionadded:: 0.1
    """


# -- observers -------------------------------------------------------------------------------


@hookspec
def itsm_change_feedback_captured(program: Program, response: FeedbackResponse) -> None:
    """A feedback response was captured (once per response).

    :param program: the program it belongs to.
    :param response: the response, with its scores and free text. Feedback found in an
        unmarked comment has ``response.inferred`` set, the classifier's ``confidence``,
        ``dimension`` and ``sentiment``, no scores, and its text already redacted.
    :raises nothing: catch your own errors. An exception stops the sync run after the
        response was recorded, so the observer is never called for it again.

    .. versionadded:: 0.1
    """


@hookspec
def itsm_change_training_completed(program: Program, key: str, completed: bool) -> None:
    """A training assignment was completed (``completed``) or reopened.

    :param program: the program the assignment belongs to.
    :param key: the assignment's correlation key.
    :param completed: True when completed, False when reopened.
    :raises nothing: catch your own errors. An exception stops the sync run after the change
        was recorded, so the observer is never called for it again.

    .. versionadded:: 0.1
    """


@hookspec
def itsm_change_communication_sent(program: Program, effect: Effect) -> None:
    """A communication was delivered (once per effect).

    :param program: the program it belongs to.
    :param effect: the delivered message effect.
    :raises nothing: catch your own errors. An exception stops the apply after this delivery
        was recorded; the rest of its batch stays pending and is looked up on the next run.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def itsm_change_compose_prompt(prompt: Prompt, ticket: Ticket, text: str) -> str | None:
    """Return the text to post for ``prompt`` on ``ticket``, or None to keep ``text``.
    The first plugin to answer wins.

    :param prompt: the program's prompt.
    :param ticket: the ticket it is about to be posted on.
    :param text: the prompt's text as the program words it.
    :return: the text to post (still posted as plain text), or None.
    :raises nothing: catch your own errors. An exception stops the sync run before the
        prompt is posted; it is tried again on the next run.

    .. versionadded:: 0.1
    """


REQUIRED_PLATFORM_HOOKS = frozenset(name for name, required in PLATFORM_HOOKS.items() if required)
"""Platform hooks every platform instance implements; registration refuses one without."""
OPTIONAL_PLATFORM_HOOKS = frozenset(PLATFORM_HOOKS) - REQUIRED_PLATFORM_HOOKS
"""Platform hooks for features a platform may lack (its own survey feature)."""
