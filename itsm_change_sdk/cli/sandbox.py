"""The sandbox from the command line: what an agent sees, and acting as staff would.

A change lead rehearses a program here before it touches production: apply it to the
sandbox, look at an agent's queue, complete training, answer a survey, comment.
"""

from __future__ import annotations

from datetime import timedelta

import click

from ..config import sandbox_url
from ..model import ADKAR_DIMENSIONS, Person, TicketFilter, utcnow
from ..sandbox.store import SandboxStore
from .common import SuggestingGroup, as_of


def _store() -> SandboxStore:
    """The sandbox, on the rehearsal's calendar: each staff action is stamped at the global
    ``--as-of`` when given; otherwise at the real time, or just after the latest thing the
    sandbox holds when a rehearsal (the demo) ran ahead of the real clock, so the next
    ``sync`` reads it rather than taking it for old news behind its cursor."""
    store = SandboxStore(sandbox_url())
    given = as_of()
    if given is not None:
        store.clock = lambda: given
        return store
    latest = store.latest_activity()
    if latest is not None and latest >= utcnow():
        after = latest + timedelta(seconds=1)
        store.clock = lambda: max(utcnow(), after)
    return store


def _agent(store: SandboxStore, agent: str) -> Person:
    person = store.person(agent)
    if person is None:
        raise click.BadParameter(f"no sandbox person {agent!r} (use an id like u-0001 or an "
                                 "email; 'itsm-change sandbox people' lists them)")
    return person


@click.command()
@click.argument("agent")
@click.option("--all", "show_all", is_flag=True, help="Include closed tasks.")
def queue(agent: str, show_all: bool) -> None:
    """What AGENT sees in the sandbox: tickets with change prompts, training, surveys."""
    store = _store()
    person = _agent(store, agent)
    groups = store.groups_of(person.id)
    click.echo(f"Queue of {person.name} <{person.email}> ({', '.join(groups) or 'no group'})")
    click.echo("\nOpen tickets:")
    shown = 0
    for group in groups:
        for ticket in store.tickets(TicketFilter(groups=(group,)), open_only=True):
            shown += 1
            click.echo(f"  {ticket.number}  [{ticket.channel or '-':<6}] "
                       f"{ticket.category or '-':<16} {ticket.title}")
            for note in store.notes(ticket.number):
                if note.internal and note.author == "itsm-change":
                    click.echo(f"      change prompt: {note.text}")
    if not shown:
        click.echo("  (none)")
    for kind, title in (("training", "Training"), ("feedback", "Feedback requests"),
                        ("ack", "Messages to acknowledge")):
        tasks = [t for t in store.all_tasks(kind=kind, assignee=person.id)
                 if show_all or t["state"] == "open"]
        click.echo(f"\n{title}:")
        for task in tasks:
            due = f" due {task['due']}" if task["due"] else ""
            click.echo(f"  {task['number']}  [{task['state']}] {task['title']}{due}")
        if not tasks:
            click.echo("  (none)")


@click.group(cls=SuggestingGroup)
def sandbox() -> None:
    """Act as service-desk staff in the sandbox (rehearse a program)."""


@sandbox.command()
def people() -> None:
    """List the sandbox's people."""
    for person in _store().people():
        click.echo(f"{person.id}  {person.name} <{person.email}>")


@sandbox.command()
@click.argument("task")
def complete(task: str) -> None:
    """Complete a training or acknowledgement TASK (e.g. TRN1000001)."""
    _store().set_task_state(task, "closed")
    click.echo(f"{task} closed.")


@sandbox.command()
@click.argument("task")
def reopen(task: str) -> None:
    """Reopen a TASK."""
    _store().set_task_state(task, "open")
    click.echo(f"{task} reopened.")


@sandbox.command()
@click.argument("task")
@click.option("--text", default="", help="Free-text answer.")
@click.option("--score", "scores", multiple=True, metavar="DIMENSION=N",
              help="A score from 1 to 5, e.g. --score awareness=4 (repeatable).")
def answer(task: str, text: str, scores: tuple[str, ...]) -> None:
    """Answer the pulse survey on a feedback TASK (e.g. SRV1000001)."""
    parsed: dict[str, int] = {}
    for item in scores:
        name, _, value = item.partition("=")
        if name not in ADKAR_DIMENSIONS or not value.isdigit() or not 1 <= int(value) <= 5:
            raise click.BadParameter(f"{item!r}: expected DIMENSION=N with a dimension from "
                                     f"{', '.join(ADKAR_DIMENSIONS)} and N from 1 to 5")
        parsed[name] = int(value)
    _store().answer_survey(task, parsed, text)
    click.echo(f"{task} answered and closed.")


@sandbox.command()
@click.argument("ticket")
@click.argument("text")
@click.option("--as", "agent", required=True, help="Who writes it (id or email).")
@click.option("--internal", is_flag=True, help="A staff-only note instead of a comment.")
def comment(ticket: str, text: str, agent: str, internal: bool) -> None:
    """Add a comment to TICKET (a feedback marker in it is captured on the next sync)."""
    store = _store()
    person = _agent(store, agent)
    store.add_note(ticket, person.id, text, internal=internal)
    click.echo(f"Comment added to {ticket}.")


@sandbox.command(name="raise")
@click.argument("title")
@click.option("--group", required=True, help="Assignment group.")
@click.option("--category", default=None)
@click.option("--channel", default="portal", show_default=True)
def raise_ticket(title: str, group: str, category: str | None, channel: str) -> None:
    """Raise an incident in the sandbox."""
    ticket = _store().add_ticket(title=title, group=group, category=category, channel=channel)
    click.echo(f"{ticket.number} raised.")


@sandbox.command()
@click.argument("ticket")
def resolve(ticket: str) -> None:
    """Resolve TICKET."""
    _store().update_ticket(ticket, state="resolved")
    click.echo(f"{ticket} resolved.")


def register(cli: click.Group) -> None:
    from . import demo

    cli.add_command(queue)
    cli.add_command(sandbox)
    demo.register(cli)
