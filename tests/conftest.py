"""Shared pytest configuration.

With EDGE_LSH_NO_SKIP=1 (set by .ci/run) a skipped test is reported as a failure, so that a
missing tool, package or C build can never make CI pass without running every test it has.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

NO_SKIP = os.environ.get("EDGE_LSH_NO_SKIP", "") not in ("", "0")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator:
    outcome = yield
    report = outcome.get_result()
    if NO_SKIP and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but EDGE_LSH_NO_SKIP=1 forbids skips in CI: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator:
    outcome = yield
    report = outcome.get_result()
    if NO_SKIP and report.skipped:
        report.outcome = "failed"
        report.longrepr = (
            f"module skipped, but EDGE_LSH_NO_SKIP=1 forbids skips in CI: {report.longrepr}"
        )
