"""Drive a program from Python: validate, plan, apply and sync on the sandbox.

Run it after ``itsm-change demo`` (which seeds the sandbox), or point ITSM_CHANGE_HOME at a
fresh directory and let it seed a small organisation itself::

    python examples/drive_program.py examples/portal-rollout/program.yaml --as-of 2027-01-12
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from itsm_change_sdk import ProgramError, Workspace, hookimpl, load_program
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore


class PrintSent:
    """An observer: print each communication as it goes out."""

    @hookimpl
    def itsm_change_communication_sent(self, program, effect):
        print(f"sent: {effect.title} ({effect.channel}) -> {effect.key}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("program")
    parser.add_argument("--as-of", default="2027-01-12", help="the simulated date (UTC)")
    parser.add_argument("--db", default=None, help="ledger URL (default: per-user SQLite)")
    args = parser.parse_args()
    try:
        program = load_program(args.program)
    except ProgramError as exc:
        print(exc)
        return 2
    clock = SimClock(datetime.fromisoformat(args.as_of).replace(hour=9, tzinfo=UTC))
    store = SandboxStore(f"sqlite:///{_sandbox_path()}", clock=clock)
    if not store.people():
        seed(store, program)
    with Workspace(args.db, clock=clock) as ws:
        ws.platforms.add("sandbox", SandboxPlatform(store))
        ws.add_observer(PrintSent())
        plan = ws.plan(program)
        print(plan.render())
        print(f"apply: {ws.apply(program, ).summary()}")
        print(f"sync:  {ws.sync(program).summary()}")
    return 0


def seed(store: SandboxStore, program) -> None:
    """A minimal organisation: each unit's group with two agents, and the managers."""
    store.add_ticket(title=f"{program.title}: change record", kind="change", channel=None)
    for member in program.alliance:
        store.add_person(member.name, member.email or f"{member.id}@example.com", member.id)
    for unit in program.units:
        people = [store.add_person(f"{unit.title} agent {i}", f"{unit.id}.{i}@example.com")
                  for i in (1, 2)]
        store.add_group(unit.group or unit.title, people)


def _sandbox_path():
    from itsm_change_sdk.config import sandbox_url

    return sandbox_url().removeprefix("sqlite:///")


if __name__ == "__main__":
    raise SystemExit(main())
