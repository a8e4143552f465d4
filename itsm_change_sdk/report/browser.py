"""Look at the HTML report in a real headless Chromium: layout at a given width, full-page
screenshots and print-to-PDF.

Speaks the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (file descriptors 3 and
4), so it needs no network port and no library beyond the standard one. Used by the
screenshot command (``python -m itsm_change_sdk.report.browser``) and the browser tests.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Chromium", "chromium_path", "main"]

WIDTHS = (1400, 390)
"""A desktop window and a phone (390 CSS pixels, as an iPhone 12-15)."""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")


class Chromium:
    """One headless browser with one page, driven over the DevTools pipe."""

    def __init__(self, executable: str, *, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="itsm-change-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def wire() -> None:  # runs in the child before exec: fds 3 and 4 are the pipe
            reading, writing = os.dup(to_browser_read), os.dup(from_browser_write)
            os.dup2(reading, 3)
            os.dup2(writing, 4)

        self._process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-pipe", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             "--hide-scrollbars", f"--user-data-dir={self._profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire, pass_fds=(3, 4))
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.send("Target.attachToTarget",
                                  {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.send("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()

    # -- protocol ------------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None, *,
             session: bool = False) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self._events.append(reply)

    def _wait_for(self, event: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, found in enumerate(self._events):
                if found.get("method") == event:
                    del self._events[: i + 1]
                    return
            self._events.append(self._read_message(deadline))

    # -- what the report needs -----------------------------------------------------------

    def open(self, url: str, width: int, *, media: str = "screen") -> None:
        """Load ``url`` in a window ``width`` CSS pixels wide (mobile layout below 600)."""
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1,
                   "mobile": width < 600}, session=True)
        self.send("Emulation.setEmulatedMedia", {"media": media}, session=True)
        self._events.clear()
        self.send("Page.navigate", {"url": url}, session=True)
        self._wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (DevTools runs it even where
        the page's Content-Security-Policy forbids scripts)."""
        found = self.send("Runtime.evaluate", {"expression": expression,
                                               "returnByValue": True}, session=True)
        if "exceptionDetails" in found:
            raise RuntimeError(f"page script failed: {found['exceptionDetails'].get('text')}")
        return found["result"].get("value")

    def emulate_media(self, media: str) -> None:
        self.send("Emulation.setEmulatedMedia", {"media": media}, session=True)

    def screenshot(self, path: Path, width: int) -> None:
        """The whole page, top to bottom, as a PNG."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1,
                   "mobile": width < 600}, session=True)
        shot = self.send("Page.captureScreenshot", {"format": "png"}, session=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def pdf(self, path: Path) -> None:
        printed = self.send("Page.printToPDF", {"printBackground": True}, session=True)
        path.write_bytes(base64.b64decode(printed["data"]))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m itsm_change_sdk.report.browser REPORT.html --out DIR``: full-page
    screenshots at 1400 and 390 px and a PDF as printed."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("page", type=Path, help="an HTML report (itsm-change report --html)")
    parser.add_argument("--out", type=Path, default=Path("."), help="where to write the files")
    args = parser.parse_args(argv)
    executable = chromium_path()
    if executable is None:
        print("Error: Chromium is not installed (Debian: apt-get install chromium).",
              file=sys.stderr)
        return 2
    if not args.page.is_file():
        print(f"Error: {args.page} is not a file; write one with "
              "`itsm-change report PROGRAM --html FILE`.", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    url = args.page.resolve().as_uri()
    with Chromium(executable) as browser:
        for width in WIDTHS:
            browser.open(url, width)
            shot = args.out / f"report-{width}.png"
            browser.screenshot(shot, width)
            print(f"Wrote {shot}")
        browser.open(url, WIDTHS[0], media="print")
        printed = args.out / "report.pdf"
        browser.pdf(printed)
        print(f"Wrote {printed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
