"""pytest options of the comprehensive tests: ``--generate-reports`` and ``--output DIR``."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("torch-ir reports")
    group.addoption(
        "--generate-reports",
        action="store_true",
        default=False,
        help="write a Markdown report per test model and an index (see --output)",
    )
    group.addoption("--output", action="store", default="reports", help="folder for --generate-reports")


@pytest.fixture(scope="session")
def report_dir(request: pytest.FixtureRequest) -> Path | None:
    """The folder reports go to, or None without ``--generate-reports``."""
    if not request.config.getoption("--generate-reports"):
        return None
    return Path(request.config.getoption("--output"))
