"""pytest options of the comprehensive tests (``--generate-reports``, ``--output DIR``), and fixtures many
test files share."""

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


@pytest.fixture(scope="session")
def tower_ir_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The IR file of the ``two_tower`` test model (named ``tower``, default pipeline), for tests that only read
    it: the command-line tests."""
    from tests.models import get_model
    from torch_ir import extract_ir

    case = get_model("two_tower")
    args, kwargs = case.inputs("meta")
    path = tmp_path_factory.mktemp("ir") / "tower.json"
    extract_ir(case.build_meta(), args, example_kwargs=kwargs, name="tower").save(path)
    return path
