"""doctor and install against the fake site."""

from __future__ import annotations

from itsm_change_sdk.model import CheckStatus


def by_name(checks):
    return {c.name: c for c in checks}


class TestDoctor:
    def test_all_good(self, platform):
        checks = platform.itsm_change_doctor()
        assert all(c.status is CheckStatus.OK for c in checks), checks
        assert "permission CREATE_ISSUES" in by_name(checks)

    def test_refused_login_stops_with_a_plain_fix_and_one_attempt(self, platform, double):
        double.valid_credentials = False
        checks = by_name(platform.itsm_change_doctor())
        assert checks["credentials"].status is CheckStatus.FAIL
        assert "api-tokens" in checks["credentials"].fix
        assert "CAPTCHA" in checks["credentials"].fix
        assert [r[1] for r in double.requests_log].count("/rest/api/3/myself") == 1
        assert "permission CREATE_ISSUES" not in checks

    def test_a_bad_token_is_blamed_on_the_credentials_not_the_site(self, platform, double):
        """Jira answers a wrong token with 401 on every call, serverInfo included."""
        double.refusals.append((401, "Client must be authenticated to access this resource."))
        double.valid_credentials = False
        checks = platform.itsm_change_doctor()
        by = by_name(checks)
        assert by["site"].status is CheckStatus.OK
        assert by["credentials"].status is CheckStatus.FAIL
        assert "api-tokens" in by["credentials"].fix
        assert "site_url" not in " ".join(f"{c.message} {c.fix or ''}" for c in checks)
        assert [r[1] for r in double.requests_log].count("/rest/api/3/myself") == 0

    def test_an_unreachable_site_is_blamed_on_the_url(self, make_platform):
        """The fake answers only its own site: any other URL does not connect."""
        checks = by_name(make_platform(site_url="https://nope.invalid").itsm_change_doctor())
        assert checks["site"].status is CheckStatus.FAIL
        assert "site_url" in checks["site"].fix
        assert "credentials" not in checks

    def test_missing_permission_names_the_fix(self, platform, double):
        double.granted.discard("TRANSITION_ISSUES")
        check = by_name(platform.itsm_change_doctor())["permission TRANSITION_ISSUES"]
        assert check.status is CheckStatus.FAIL
        assert "permission scheme of OPS" in check.fix

    def test_without_a_group_field_prompts_would_match_nothing(self, make_platform):
        check = by_name(make_platform(group_field="").itsm_change_doctor())["group field"]
        assert check.status is CheckStatus.WARN
        assert "prompts and per-unit metrics match nothing" in check.message
        assert "group_field" in check.fix

    def test_unknown_project(self, make_platform):
        checks = by_name(make_platform(project="NOPE").itsm_change_doctor())
        assert checks["project"].status is CheckStatus.FAIL


class TestInstall:
    URL = "https://hooks.example.com/jira"

    def test_dry_run_describes_without_writing(self, platform, double):
        (step,) = platform.itsm_change_install(webhook_url=self.URL, apply=False, remove=False)
        assert not step.done and "Settings > System > WebHooks" in step.instructions
        assert double.webhooks == {}

    def test_apply_is_idempotent_and_remove_removes(self, platform, double):
        (step,) = platform.itsm_change_install(webhook_url=self.URL, apply=True, remove=False)
        assert step.done
        (hook,) = double.webhooks.values()
        assert hook["events"] == ["jira:issue_created", "jira:issue_updated", "comment_created"]
        assert hook["filters"]["issue-related-events-section"] == 'project in ("OPS", "HELP")'
        assert hook["secret"] == "whsec-0123456789"
        assert "whsec-0123456789" not in step.message
        platform.itsm_change_install(webhook_url=self.URL, apply=True, remove=False)
        assert len(double.webhooks) == 1
        (removed,) = platform.itsm_change_install(webhook_url=self.URL, apply=False,
                                                  remove=True)
        assert removed.done and double.webhooks == {}
