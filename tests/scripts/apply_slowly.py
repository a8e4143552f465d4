"""Apply a program to the sandbox, announcing each platform write and each ledger commit of a
batch (claims, results) and pausing right after it, so a test can kill the process at each of
those moments."""

from __future__ import annotations

import sys
import time
from datetime import datetime

from itsm_change_sdk import Workspace, load_program
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.ledger import Ledger
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore


class AnnouncingSandbox(SandboxPlatform):
    def _write(self, effect, apply):
        def announced():
            number = apply()
            print(f"APPLIED {effect.key}", flush=True)
            time.sleep(0.05)
            return number

        return super()._write(effect, announced)


def announce_commits() -> None:
    claim_many, record_results = Ledger.claim_many, Ledger.record_results

    def claimed(self, items, now=None):
        won = claim_many(self, items, now)
        print(f"CLAIMED {len(won)}", flush=True)
        time.sleep(0.05)
        return won

    def recorded(self, pairs, now=None):
        record_results(self, pairs, now)
        print(f"RECORDED {len(pairs)}", flush=True)
        time.sleep(0.05)

    Ledger.claim_many = claimed
    Ledger.record_results = recorded


def main() -> None:
    announce_commits()
    program_file, ledger, sandbox, now = sys.argv[1:5]
    clock = SimClock(datetime.fromisoformat(now))
    program = load_program(program_file)
    with Workspace(ledger, clock=clock, concurrency=1) as ws:
        ws.platforms.add("sandbox", AnnouncingSandbox(SandboxStore(sandbox, clock=clock)))
        report = ws.apply(program)
        print(f"DONE {report.summary()}", flush=True)


if __name__ == "__main__":
    main()
