"""`.ci/run` runs `make test`, whose pytest steps must fail on a failing test and on no tests."""

from __future__ import annotations

import subprocess

import pytest

from tests.processes import REPO


@pytest.fixture
def scratch_tests(request):
    # A folder per test: under pytest-xdist the two tests below run side by side.
    folder = REPO / "var" / f"ci-guard-{request.node.name}"
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


def _make_pytest(target: str, args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # One xdist process: the same pytest line as the suite's, without booting three Djangos
        # for a single scratch file.
        ["make", "--no-print-directory", target, f"PYTEST_ARGS={args}", "PYTEST_WORKERS=1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_ci_entry_point_is_the_readme_test_command():
    script = (REPO / ".ci" / "run").read_text()
    assert "make test" in script
    assert "make test" in (REPO / "README.md").read_text()


def test_a_failing_test_fails_the_test_target(scratch_tests):
    (scratch_tests / "test_fails.py").write_text("def test_fails():\n    assert 1 == 2\n")
    result = _make_pytest("pytest-sqlite", str(scratch_tests / "test_fails.py"))
    assert result.returncode != 0, result.stdout
    assert "1 failed" in result.stdout


def test_a_run_that_collects_no_test_fails_the_test_target(scratch_tests):
    (scratch_tests / "test_nothing.py").write_text("X = 1\n")
    result = _make_pytest("pytest-sqlite", str(scratch_tests / "test_nothing.py"))
    assert result.returncode != 0, result.stdout
    assert "no tests ran" in result.stdout
