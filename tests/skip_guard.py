"""A pytest plugin that fails the run on any skip but a GPU one.

Every dependency of the suite is installed by `pip install -e ".[test]"`, so on any machine the
only test that may skip is one that needs a GPU (its reason names the GPU or CUDA). A skip for
any other reason (a missing package, a file that "does not exist yet") would hide tests while
the run stays green: this plugin lists such skips after the summary and makes the exit status
1. tests/conftest.py loads it; tests/test_skips.py checks that it fails a run.
"""

from __future__ import annotations

import re

import pytest

# What a skip's reason must name: the hardware the test needs.
GPU_REASON = re.compile(r"\b(?:GPU|CUDA)\b")


def skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    """The reason a skipped report gives (pytest stores (path, line, "Skipped: reason"))."""
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


class SkipGuard:
    """Records every skip that does not name a GPU; fails the session when there is one."""

    def __init__(self) -> None:
        self.bad: list[tuple[str, str]] = []

    def _record(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            reason = skip_reason(report)
            if not GPU_REASON.search(reason):
                self.bad.append((report.nodeid, reason))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)  # a module-level skip or importorskip

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.bad and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.bad:
            return
        terminalreporter.write_sep(
            "=", "skips that are not GPU skips (they fail the run)", red=True
        )
        for nodeid, reason in self.bad:
            terminalreporter.write_line(f"{nodeid}: {reason}")
        terminalreporter.write_line(
            "Every dependency is in the `test` extra: install it (pip install -e '.[test]'), or "
            "make the test fail instead of skipping. Only a test that needs a GPU may skip, "
            "with a reason naming the GPU or CUDA."
        )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipGuard(), "netc-skip-guard")
