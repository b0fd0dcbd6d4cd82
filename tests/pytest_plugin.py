"""Suite-wide pytest hooks, loaded by `-p` in pyproject.toml so they hold for any path given on
the command line (a conftest below tests/ is not read for a path outside it)."""

from __future__ import annotations

from typing import Final

import pytest

PASS_ONLY = ("sqlite_pass_only", "postgresql_pass_only")
LINELIST: Final = "linelist"  # a variable: mypy reads a literal `type=` argument as a type form


def pytest_addoption(parser: pytest.Parser) -> None:
    for name in PASS_ONLY:
        parser.addini(name, help=f"test folders marked {name}", type=LINELIST)
    parser.addini("run_first", help="test files that start before the others", type=LINELIST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of the folders that pyproject.toml names for one database pass only."""
    for name in PASS_ONLY:
        folders = [config.rootpath / folder for folder in config.getini(name)]
        marker = getattr(pytest.mark, name)
        for item in items:
            if any(item.path.is_relative_to(folder) for folder in folders):
                item.add_marker(marker)
    first = [config.rootpath / path for path in config.getini("run_first")]
    # A stable sort: each file's tests stay together and in their order.
    items.sort(key=lambda item: first.index(item.path) if item.path in first else len(first))
