"""A wheel built from the checkout holds every project app whole (P14): a non-editable install
(`pip install .`, a deploy from a wheel) must not lack an installed app, a migration or a
subpackage because pyproject.toml's package list forgot it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib import import_module
from pathlib import Path

from django.conf import settings

from tests.processes import REPO

# Not a Django app, but shipped and run on its own: `Procfile.demo` starts `python -m salesforce_emulator`.
STANDALONE_PACKAGES = ["salesforce_emulator"]


def _checkout_files() -> list[str]:
    """The files of the working tree git knows of or would add (tracked, and untracked but not
    ignored): what a fresh clone of this change holds, never a stale `build/` or `__pycache__`."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return sorted(name for name in listed if name and (REPO / name).is_file())


def _project_packages() -> list[str]:
    """The top-level packages of INSTALLED_APPS that live in this checkout, and the emulator."""
    packages = []
    for entry in settings.INSTALLED_APPS:
        top = entry.split(".")[0]
        module_file = import_module(top).__file__
        if module_file and Path(module_file).resolve().parent.parent == REPO and top not in packages:
            packages.append(top)
    return packages + STANDALONE_PACKAGES


def _wheel_names(files: list[str], tmp_path: Path) -> set[str]:
    """Build the wheel from a copy of the checkout (pip builds in the source tree; a copy keeps
    the checkout clean and no earlier `build/` can add files that are gone)."""
    source = tmp_path / "source"
    for name in files:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    out = tmp_path / "wheel"
    # No build isolation: the dev extras install the build backend, so nothing is downloaded.
    pip_wheel = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation"]
    result = subprocess.run(
        [*pip_wheel, "--wheel-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("oppsync-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_holds_every_file_of_every_project_app(tmp_path):
    files = _checkout_files()
    packages = _project_packages()
    # The apps the settings name, so a settings change cannot make this test check nothing.
    assert {"oppsync_site", "people", "opportunities", "smartlists", "campaigns"} <= set(packages)
    in_wheel = _wheel_names(files, tmp_path)
    missing = {
        package: [name for name in files if name.startswith(f"{package}/") and name not in in_wheel]
        for package in packages
    }
    missing = {package: names for package, names in missing.items() if names}
    assert not missing, f"files of installed apps the wheel lacks: {missing}"
    # Migrations, subpackages and (for an app that has any) templates and static files are files
    # of the package like any other; spot-check that the walk saw them.
    assert "campaigns/migrations/0001_campaign.py" in in_wheel
    assert "opportunities/sync/apply/__init__.py" in in_wheel
