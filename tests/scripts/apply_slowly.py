"""Apply a program to the sandbox, announcing each platform write and pausing right after it,
so a test can kill the process between the platform's write and the ledger's record."""

from __future__ import annotations

import sys
import time
from datetime import datetime

from itsm_change_sdk import Workspace, load_program
from itsm_change_sdk.demo import SimClock
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


def main() -> None:
    program_file, ledger, sandbox, now = sys.argv[1:5]
    clock = SimClock(datetime.fromisoformat(now))
    program = load_program(program_file)
    with Workspace(ledger, clock=clock, concurrency=1) as ws:
        ws.platforms.add("sandbox", AnnouncingSandbox(SandboxStore(sandbox, clock=clock)))
        report = ws.apply(program)
        print(f"DONE {report.summary()}", flush=True)


if __name__ == "__main__":
    main()
