"""P14: dependencies run one way, and `lint-imports` says so (pyproject's [tool.importlinter]).
The contracts only hold what they name: every module of oppsync_site must be named as root or
kernel, and a kernel module that imports an app must break the build."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.processes import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
KERNEL_CONTRACT = "The kernel (oppsync_site but its root) imports no app"


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def _oppsync_site_children() -> set[str]:
    package = REPO / "oppsync_site"
    modules = {path.stem for path in package.glob("*.py") if path.name != "__init__.py"}
    packages = {path.parent.name for path in package.glob("*/__init__.py")}
    return {f"oppsync_site.{name}" for name in modules | packages}


def test_every_module_of_oppsync_site_is_named_root_or_kernel():
    contracts = _contracts()
    kernel = set(contracts["kernel"]["source_modules"])
    root = {name.strip() for name in contracts["layers"]["layers"][0].split(":")}
    assert {"oppsync_site.urls", "oppsync_site.api_router", "oppsync_site.celery"} <= root
    assert {"oppsync_site.roles", "oppsync_site.admin_site", "oppsync_site.middleware"} <= kernel
    assert not root & kernel, f"both root and kernel: {sorted(root & kernel)}"
    children = _oppsync_site_children()
    assert children - root - kernel == set(), "name each new module of oppsync_site as root or kernel"
    assert (root | kernel) - children == set(), "the contracts name modules that are gone"


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120
    )


def test_lint_imports_breaks_when_a_kernel_module_imports_an_app(tmp_path):
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    for package in config["root_packages"]:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    kept = _lint_imports(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr

    kernel_module = tmp_path / "oppsync_site" / "currencies.py"
    kernel_module.write_text(kernel_module.read_text() + "\nfrom opportunities.models import Opportunity\n")
    broken = _lint_imports(tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert f"{KERNEL_CONTRACT} BROKEN" in broken.stdout
    assert "oppsync_site.currencies is not allowed to import opportunities" in broken.stdout
