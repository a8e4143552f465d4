"""Feedback found in unmarked comments: the classifier, redaction, themes and the command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk.cli import cli
from itsm_change_sdk.errors import ProgramError
from itsm_change_sdk.insights import FeedbackClassifier, ThemeBook, redact, shipped_classifier
from itsm_change_sdk.insights.corpus import load_corpus
from itsm_change_sdk.schema import load_program

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "portal-rollout" / "program.yaml"


class TestCorpus:
    def test_held_out_part_is_apart_from_the_training_part(self):
        train, held_out = load_corpus("train"), load_corpus("eval")
        assert {c.text for c in train}.isdisjoint({c.text for c in held_out})
        assert len(train) + len(held_out) == len(load_corpus())

    def test_hundreds_of_comments_across_kinds_of_change(self):
        comments = load_corpus()
        assert len(comments) >= 300
        assert {c.change for c in comments} == {"portal", "knowledge", "approvals", "migration"}
        for part in ("train", "eval"):
            kinds = {c.is_feedback for c in load_corpus(part)}
            assert kinds == {True, False}

    def test_feedback_rows_carry_every_label_and_work_rows_none(self):
        for comment in load_corpus():
            labels = (comment.dimension, comment.sentiment, comment.theme)
            if comment.is_feedback:
                assert None not in labels, comment.text
            else:
                assert labels == (None, None, None), comment.text


class TestClassifier:
    def test_a_marked_comment_is_always_feedback_and_not_inferred(self):
        [found] = shipped_classifier().classify(["#feedback ability=2 desire=4 sent the link"])
        assert found.is_feedback and found.marked and not found.inferred
        assert found.confidence == 1.0
        assert found.dimension == "ability"  # the lowest score is the barrier

    def test_the_program_marker_counts_not_the_default(self):
        [found] = shipped_classifier().classify(["#fb ok"], marker="#fb", threshold=1.0)
        assert found.marked
        [other] = shipped_classifier().classify(["#feedback ok"], marker="#fb", threshold=1.0)
        assert not other.is_feedback

    def test_ordinary_ticket_work_that_mentions_the_portal_is_not_feedback(self):
        [found] = shipped_classifier().classify(["Sent the user the portal link, closing."])
        assert not found.is_feedback
        assert (found.dimension, found.sentiment) == (None, None)

    def test_a_complaint_about_the_change_is_feedback_with_dimension_and_sentiment(self):
        [found] = shipped_classifier().classify(
            ["Nobody told us the old phone queue closes on Friday, the team is upset."])
        assert found.inferred and 0.5 <= found.confidence < 1.0
        assert found.dimension == "awareness"
        assert found.sentiment == -1

    def test_the_threshold_decides(self):
        text = "The new portal form takes twice as long as the phone"
        [strict] = shipped_classifier().classify([text], threshold=0.999)
        [loose] = shipped_classifier().classify([text], threshold=0.1)
        assert loose.is_feedback and not strict.is_feedback
        assert strict.confidence == loose.confidence

    def test_training_is_deterministic(self):
        texts = [c.text for c in load_corpus("eval")[:20]]
        again = FeedbackClassifier(load_corpus("train")).classify(texts)
        assert again == shipped_classifier().classify(texts)


class TestRedact:
    def test_contacts_and_other_peoples_names_are_removed(self):
        text = ("Maria Lopez said call +44 20 7946 0958 or mail maria.lopez@example.com; "
                "@jsmith agrees")
        cleaned = redact(text)
        assert "Maria" not in cleaned and "Lopez" not in cleaned
        assert "7946" not in cleaned and "example.com" not in cleaned and "jsmith" not in cleaned
        assert cleaned.count("[name]") == 2 and "[phone]" in cleaned and "[email]" in cleaned

    def test_the_author_and_known_people_are_handled(self):
        cleaned = redact("Priya here: Ngozi Okafor showed me", author="Priya Shah",
                         people=["Ngozi Okafor"])
        assert cleaned == "Priya here: [name] showed me"

    def test_ticket_numbers_dates_times_and_addresses_stay(self):
        text = "INC0012345 on 2026-03-01 at 14:30, server 10.20.30.40, version 5.1.2"
        assert redact(text) == text


class TestThemes:
    def test_new_comments_join_the_theme_they_belong_to(self):
        book = ThemeBook()
        first = book.assign(["Portal search never finds the VPN article",
                             "The approval step adds two days to every change"])
        assert first[0] is not first[1]
        [later] = book.assign(["search in the portal cannot find the VPN article"])
        assert later is first[0] and later.size == 2
        assert "search" in later.label or "vpn" in later.label


class TestProgramSetting:
    def test_the_feedback_setting_loads(self, tmp_path):
        program = tmp_path / "p.yaml"
        program.write_text(EXAMPLE.read_text() + "\nfeedback: {unmarked: true, threshold: 0.7}\n")
        setting = load_program(program).unmarked_feedback
        assert setting.enabled and setting.threshold == 0.7
        assert load_program(EXAMPLE).unmarked_feedback.enabled is False

    def test_bad_values_are_named(self, tmp_path):
        program = tmp_path / "p.yaml"
        program.write_text(EXAMPLE.read_text()
                           + "\nfeedback: {unmarked: yes please, exclude_units: [nowhere]}\n")
        with pytest.raises(ProgramError) as caught:
            load_program(program)
        message = str(caught.value)
        assert "feedback.unmarked" in message and "true or false" in message
        assert "feedback.exclude_units.0" in message and "nowhere" in message


class TestClassifyCommand:
    @pytest.fixture
    def comments(self, tmp_path):
        path = tmp_path / "comments.jsonl"
        lines = [{"id": "c1", "text": "The portal form takes twice as long as the phone"},
                 {"id": 2, "text": "Sent the user the portal link and closed the call."},
                 {"text": "#feedback ability=2 the form is too long"}]
        path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
        return path

    def test_one_line_per_comment(self, comments):
        result = CliRunner().invoke(cli, ["feedback", "classify", str(comments)])
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.output.splitlines()]
        assert [r["id"] for r in rows] == ["c1", 2, None]
        assert [r["is_feedback"] for r in rows] == [True, False, True]
        assert set(rows[0]) >= {"id", "is_feedback", "dimension", "sentiment", "theme",
                                "confidence"}
        assert rows[0]["dimension"] == "ability" and rows[0]["sentiment"] == -1
        assert rows[1]["theme"] is None and rows[1]["dimension"] is None
        assert rows[0]["theme_id"] == rows[2]["theme_id"]

    def test_the_program_threshold_applies(self, comments, tmp_path):
        program = tmp_path / "p.yaml"
        program.write_text(EXAMPLE.read_text() + "\nfeedback: {threshold: 1}\n")
        result = CliRunner().invoke(
            cli, ["feedback", "classify", "--program", str(program), str(comments)])
        rows = [json.loads(line) for line in result.output.splitlines()]
        assert [r["is_feedback"] for r in rows] == [False, False, True]

    def test_a_bad_line_is_named_without_a_traceback(self, tmp_path):
        path = tmp_path / "bad.jsonl"
        path.write_text('{"text": "fine"}\n{"id": "c2"}\n')
        result = CliRunner().invoke(cli, ["feedback", "classify", str(path)])
        assert result.exit_code == 2
        assert "bad.jsonl line 2" in result.output and '"text"' in result.output
        assert "Traceback" not in result.output

    def test_without_the_extra_it_says_what_to_install(self, comments, monkeypatch):
        monkeypatch.setitem(sys.modules, "sklearn", None)
        result = CliRunner().invoke(cli, ["feedback", "classify", str(comments)])
        assert result.exit_code == 2
        assert "itsm-change-sdk[insights]" in result.output


class TestCapture:
    """Unmarked comments captured as inferred feedback, reviewed by a person."""

    @pytest.fixture
    def ledger(self, tmp_path):
        from itsm_change_sdk.ledger import Ledger

        ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        yield ledger
        ledger.close()

    @staticmethod
    def program(tmp_path, setting: str):
        path = tmp_path / "p.yaml"
        path.write_text(EXAMPLE.read_text() + f"\nfeedback: {setting}\n")
        return load_program(path)

    @staticmethod
    def comment(text: str, author: str = "agent7", ident: str = "901"):
        from datetime import UTC, datetime

        from itsm_change_sdk.model import Comment

        return Comment("sandbox", ident, "INC1", author, datetime(2026, 11, 2, 9, tzinfo=UTC),
                       text)

    def test_feedback_is_kept_redacted_and_marked_inferred(self, tmp_path):
        from itsm_change_sdk.insights.capture import infer_feedback

        program = self.program(tmp_path, "{unmarked: true}")
        unit = program.units[0].id
        found = infer_feedback(program, self.comment(
            "Nobody told us the phone line closes Friday, ask Maria at maria@example.com"),
            unit)
        assert found is not None and found.inferred
        assert 0.5 <= found.confidence < 1 and found.dimension == "awareness"
        assert "Maria" not in found.text and "example.com" not in found.text
        assert found.unit == unit and found.scores == {}

    def test_nothing_is_read_unless_the_program_asks(self, tmp_path):
        from itsm_change_sdk.insights.capture import infer_feedback

        complaint = self.comment("The new portal form takes twice as long as the phone")
        off = self.program(tmp_path, "{unmarked: false}")
        assert infer_feedback(off, complaint, off.units[0].id) is None
        unit = off.units[0].id
        excluded = self.program(tmp_path, f"{{unmarked: true, exclude_units: [{unit}]}}")
        assert infer_feedback(excluded, complaint, unit) is None
        on = self.program(tmp_path, "{unmarked: true}")
        assert infer_feedback(on, complaint, None) is None  # not one of the program's staff
        assert infer_feedback(on, self.comment("Sent the user the portal link."), unit) is None

    def test_the_ledger_keeps_inferred_apart_and_a_review_decides(self, tmp_path, ledger):
        from itsm_change_sdk.insights.capture import infer_feedback

        program = self.program(tmp_path, "{unmarked: true}")
        unit = program.units[0].id
        for ident, text in (("1", "Portal search never finds anything useful"),
                            ("2", "Nobody told us the old queue closes Friday")):
            found = infer_feedback(program, self.comment(text, ident=ident), unit)
            assert found is not None and ledger.add_feedback(found)
        assert not ledger.add_feedback(found)  # captured once
        assert list(ledger.feedback(program.id)) == []  # marked feedback only
        pending = list(ledger.feedback_to_review(program.id))
        assert [r.inferred for _, _, r in pending] == [True, True]
        first, second = pending[0][0], pending[1][0]
        assert ledger.review_feedback(program.id, second, "dismissed")
        assert ledger.review_feedback(program.id, first, "confirmed")
        assert not ledger.review_feedback(program.id, "sandbox:comment:nope", "confirmed")
        kept = list(ledger.feedback(program.id, inferred=True))
        assert [r.text for r in kept] == ["Portal search never finds anything useful"]
        assert list(ledger.feedback_to_review(program.id)) == []
        reviewed = {i: v for i, v, _ in ledger.feedback_to_review(program.id, reviewed=True)}
        assert reviewed == {first: "confirmed", second: "dismissed"}

    def test_review_command_lists_confirms_and_dismisses(self, tmp_path, ledger):
        from itsm_change_sdk.insights.capture import infer_feedback

        program_file = tmp_path / "p.yaml"
        program = self.program(tmp_path, "{unmarked: true}")
        found = infer_feedback(program, self.comment("Portal search never finds anything"),
                               program.units[0].id)
        ledger.add_feedback(found)
        db = str(tmp_path / "ledger.db")
        listed = CliRunner().invoke(cli, ["feedback", "review", str(program_file), "--db", db])
        assert listed.exit_code == 0, listed.output
        assert "sandbox:comment:901" in listed.output and "Portal search" in listed.output
        done = CliRunner().invoke(cli, ["feedback", "review", str(program_file), "--db", db,
                                        "--dismiss", "sandbox:comment:901"])
        assert "1 dismissed" in done.output and "Nothing to review" in done.output
        wrong = CliRunner().invoke(cli, ["feedback", "review", str(program_file), "--db", db,
                                         "--confirm", "sandbox:comment:404"])
        assert wrong.exit_code == 2 and "sandbox:comment:404" in wrong.output


class TestReportSection:
    def test_what_people_are_saying_groups_comments_per_theme(self, tmp_path):
        from datetime import UTC, datetime

        from itsm_change_sdk.ledger import Ledger
        from itsm_change_sdk.metrics import builtin_metric_kinds
        from itsm_change_sdk.model import FeedbackResponse
        from itsm_change_sdk.report.build import build_report
        from itsm_change_sdk.report.terminal import render_text

        path = tmp_path / "p.yaml"
        path.write_text(EXAMPLE.read_text() + "\nfeedback: {unmarked: true}\n")
        program = load_program(path)
        unit = program.units[0].id
        ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        texts = ["Portal search never finds the VPN article",
                 "search in the portal cannot find the VPN article either",
                 "Nobody told us the old phone queue closes Friday"]
        for number, text in enumerate(texts):
            ledger.add_feedback(FeedbackResponse(
                id=f"comment:{number}", platform="sandbox", program=program.id,
                person="agent", submitted_at=datetime(2026, 11, 2 + number, tzinfo=UTC),
                scores={}, text=text, source="comment", unit=unit, inferred=True,
                confidence=0.9, dimension="ability" if number < 2 else "awareness",
                sentiment=-1))
        ledger.review_feedback(program.id, "sandbox:comment:2", "dismissed")
        kinds = {k.name: k for k in builtin_metric_kinds()}
        report = build_report(program, ledger, [], kinds,
                              now=datetime(2026, 11, 20, tzinfo=UTC))
        ledger.close()
        [voice] = report.voices  # the dismissed comment left the report
        assert voice.comments == 2 and voice.inferred == 2
        assert voice.dimension == "ability" and voice.sentiment == -1
        assert voice.by_unit == {unit: 2}
        text = "\n".join(render_text(report))
        assert "What people are saying" in text
        assert "Portal search never finds the VPN article" in text
        assert "Nobody told us" not in text
