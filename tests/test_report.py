"""The report command and its outputs on the demo's data: text, CSV, JSON and HTML."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk.cli import cli
from itsm_change_sdk.ledger import Ledger
from itsm_change_sdk.model import FeedbackResponse
from itsm_change_sdk.report.build import build_report, program_tickets
from itsm_change_sdk.schema import load_program
from itsm_change_sdk.workspace import Workspace

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portal-rollout" / "program.yaml"
HOSTILE = '<script>alert("x")</script> & <img src=https://evil.example/x.png>'
REMOTE = re.compile(r"^\s*(?:https?:)?//|url\(\s*[\"']?\s*(?:https?:)?//|@import", re.IGNORECASE)
LINKING = {"src", "href", "xlink:href", "action", "formaction", "poster", "srcset", "data",
           "background", "style"}


class Links(HTMLParser):
    """Every attribute or stylesheet that could make a browser fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.remote: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag, attrs):
        self.in_style = tag == "style"
        for name, value in attrs:
            if name in LINKING and value and REMOTE.search(value):
                self.remote.append(f"{tag} {name}={value}")

    def handle_data(self, data):
        if self.in_style and REMOTE.search(data):
            self.remote.append(f"style: {data[:80]}")

    def handle_endtag(self, tag):
        self.in_style = False


def remote_references(page: str) -> list[str]:
    parser = Links()
    parser.feed(page)
    return parser.remote


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The demo's ten weeks, plus one feedback answer carrying markup."""
    home = tmp_path_factory.mktemp("report-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ITSM_CHANGE_HOME", str(home))
        mp.delenv("ITSM_CHANGE_DB", raising=False)
        mp.delenv("ITSM_CHANGE_SANDBOX_DB", raising=False)
        result = CliRunner().invoke(cli, ["demo", "--weeks", "10"])
        assert result.exit_code == 0, result.output
        ledger = Ledger(f"sqlite:///{home / 'ledger.db'}")
        ledger.add_feedback(FeedbackResponse(
            "comment:hostile", "sandbox", "portal-rollout", "u-0005",
            # The latest answer, so the terminal (the latest three per group) shows it too.
            datetime(2027, 3, 12, 17, tzinfo=UTC), {"knowledge": 2, "ability": 1}, HOSTILE,
            "comment", ticket_id="INC0001300", unit="sd-tier1"))
        ledger.close()
    return home


@pytest.fixture
def run(home, monkeypatch):
    monkeypatch.setenv("ITSM_CHANGE_HOME", str(home))

    def invoke(*args: object):
        return CliRunner().invoke(cli, [str(a) for a in args])
    return invoke


@pytest.fixture
def built(home, monkeypatch):
    """The report as the command computes it, for comparing exported numbers."""
    monkeypatch.setenv("ITSM_CHANGE_HOME", str(home))
    from itsm_change_sdk.plugins import metric_registry

    program = load_program(EXAMPLE)
    with Workspace() as ws:
        ws.enable_for(program)
        yield build_report(program, ws.ledger, program_tickets(ws.platforms, program),
                           metric_registry(ws.pm).kinds, now=ws.clock())


class TestTerminal:
    def test_shows_the_pilot_against_its_goals_and_the_gates(self, run, built):
        result = run("report", EXAMPLE)
        assert result.exit_code == 0, result.output
        out = result.output
        pilot = built.goals[0].units["sd-tier1"]
        assert re.search(rf"Service Desk Tier 1\s+pilot\s+18%\s+\S+\s+{pilot.current:.0%}\s+50%",
                         out)
        assert "Training (threshold 80%)" in out
        assert "Feedback (ADKAR averages, 1-5)" in out and "ability" in out
        assert "wave-2: CLOSED" in out and "sign-off by priya-nair" in out
        assert HOSTILE[:20] in out  # plain text in a terminal, shown as written


class TestExports:
    def test_json_and_csv_hold_the_computed_numbers(self, run, built, tmp_path):
        result = run("report", EXAMPLE, "--json", tmp_path / "r.json", "--csv", tmp_path / "csv")
        assert result.exit_code == 0, result.output
        data = json.loads((tmp_path / "r.json").read_text())
        pilot = built.goals[0].units["sd-tier1"]
        [row] = [r for r in data["tables"]["goals"]
                 if r["goal"] == "portal-share" and r["unit"] == "sd-tier1"]
        assert row["current"] == pilot.current and row["current_tickets"] == pilot.current_count
        assert row["measured_before"] == pilot.before and row["met"] == pilot.met
        with (tmp_path / "csv" / "goals.csv").open() as handle:
            [csv_row] = [r for r in csv.DictReader(handle)
                         if r["goal"] == "portal-share" and r["unit"] == "sd-tier1"]
        assert float(csv_row["current"]) == pilot.current
        training = built.training.by_unit["sd-tier1"]
        with (tmp_path / "csv" / "training_units.csv").open() as handle:
            rows = {r["unit"]: r for r in csv.DictReader(handle)}
        assert int(rows["sd-tier1"]["completed"]) == training.completed
        assert float(rows["sd-tier1"]["median_days_to_complete"]) == training.median_days
        feedback = built.feedback.units["sd-tier1"]
        [fb_row] = [r for r in data["tables"]["feedback"] if r["unit"] == "sd-tier1"]
        assert fb_row["ability"] == feedback.averages["ability"]
        assert fb_row["response_rate"] == feedback.response_rate
        assert data["gates"]["wave-2"]["open"] is False

    def test_csv_neutralises_formulas_in_every_file(self, run, tmp_path):
        """Goal and prompt titles come from people too: no cell of any file may start as a
        spreadsheet formula."""
        text = EXAMPLE.read_text()
        text = text.replace("title: Half of all incidents are raised through the portal",
                            'title: "=HYPERLINK(\\"http://x.example\\",\\"goal\\")"')
        text = text.replace("title: Password resets go to self-service",
                            'title: "@SUM(1+1)"')
        hostile = tmp_path / "program.yaml"
        hostile.write_text(text)
        result = run("report", hostile, "--csv", tmp_path / "csv")
        assert result.exit_code == 0, result.output
        cells: dict[str, list[str]] = {}
        for path in (tmp_path / "csv").glob("*.csv"):
            with path.open(newline="") as handle:
                cells[path.stem] = [c for row in csv.reader(handle) for c in row]
        starts = ("=", "+", "-", "@", "\t", "\r")
        assert not [(name, c) for name, found in cells.items() for c in found
                    if c.startswith(starts)]
        assert "'=HYPERLINK(\"http://x.example\",\"goal\")" in cells["goals"]
        assert "'@SUM(1+1)" in cells["prompts"]

    def test_csv_neutralises_formulas_in_free_text(self, run, tmp_path):
        run("report", EXAMPLE, "--csv", tmp_path)
        text = (tmp_path / "feedback_text.csv").read_text()
        assert "<script>" in text  # CSV is data, not markup: kept as written
        for row in csv.DictReader(text.splitlines()):
            assert not row["text"].startswith(("=", "+", "-", "@"))


class TestHtml:
    @pytest.fixture
    def page(self, run, tmp_path):
        result = run("report", EXAMPLE, "--html", tmp_path / "r.html")
        assert result.exit_code == 0, result.output
        return (tmp_path / "r.html").read_text()

    def test_feedback_text_is_escaped(self, page):
        assert "<script>" not in page and "<img" not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img" in page

    def test_nothing_points_to_the_network(self, page):
        assert remote_references(page) == []
        assert "<script" not in page.lower() and "<link" not in page.lower()
        assert "default-src 'none'" in page

    def test_the_network_check_catches_a_remote_reference(self):
        assert remote_references('<img src="https://x.example/a.png">') != []
        assert remote_references("<style>body{background:url(//x.example/a)}</style>") != []
        assert remote_references("<p>&lt;img src=https://x.example&gt;</p>") == []

    def test_has_the_charts(self, page):
        ids = set(re.findall(r'<svg id="([^"]+)"', page))
        assert {"chart-goal-portal-share-sd-tier1", "chart-goal-resolve-time-sd-tier1",
                "chart-training", "chart-adkar", "chart-feedback-sd-tier1"} <= ids


class TestReportCommand:
    def test_global_as_of_judges_overdue_at_that_moment(self, run, tmp_path):
        early = run("--as-of", "2027-01-12T23:59:59", "report", EXAMPLE,
                    "--json", tmp_path / "a.json")
        assert early.exit_code == 0, early.output
        data = json.loads((tmp_path / "a.json").read_text())
        assert data["as_of"].startswith("2027-01-12T23:59:59")
        assert all(r["overdue"] == 0 for r in data["tables"]["training_units"])

    def test_as_of_shows_only_what_was_known_then(self, run, built, tmp_path):
        """At the end of 2027-02-01: no message, answer or ticket from later, and the
        units of wave 2 (go-live 03-08) are not live yet."""
        done = run("report", EXAMPLE, "--as-of", "2027-02-01", "--json", tmp_path / "a.json")
        assert done.exit_code == 0, done.output
        tables = json.loads((tmp_path / "a.json").read_text())["tables"]
        assert all(r["occurrence"] <= "2027-02-01" for r in tables["communications"])
        assert any(c.occurrence > "2027-02-01" for c in built.communications)
        assert all(r["submitted_at"] <= "2027-02-01T23:59:59+00:00"
                   for r in tables["feedback_text"])
        assert all(r["week"] <= "2027-02-01" for r in tables["goal_weekly"])
        statuses = {(r["goal"], r["unit"]): r["status"] for r in tables["goals"]}
        assert statuses[("portal-share", "sd-tier2")] == "not live yet"
        assert statuses[("portal-share", "field-services")] == "not live yet"
        assert not any(r["met"] for r in tables["goals"] if r["wave"] != "pilot")

    def test_unknown_program_file_exits_2(self, run, tmp_path):
        assert run("report", tmp_path / "missing.yaml").exit_code == 2
