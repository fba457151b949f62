"""Tests of the release machinery: scripts/update_version.sh, the CI workflow, the scripts'
syntax, and the agreement of the three places a user can read the version from.

The version script only ever runs on a copy of the repository's manifests in tmp_path; the
tests check that the real tree is left as it was.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised by CI on Python < 3.11
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = REPO_ROOT / "scripts"
UPDATE_VERSION = SCRIPTS_DIR / "update_version.sh"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "build.yml"
MANIFESTS = ("Cargo.toml", "Cargo.lock", "CHANGELOG.md", "pyproject.toml")
SCRIPTS = sorted(SCRIPTS_DIR.glob("*.sh"))
PEP440_PRE_RELEASE = {"alpha": "a", "beta": "b", "rc": "rc"}

BASH = shutil.which("bash")
# The release scripts are run on Linux and macOS; on Windows `bash` may be WSL's, which sees
# other paths.
needs_bash = pytest.mark.skipif(
    BASH is None or sys.platform == "win32",
    reason="the release scripts need bash on a POSIX host",
)


def workspace_version(cargo_toml: Path) -> str:
    """The version under [workspace.package] in `cargo_toml`."""
    data = tomllib.loads(cargo_toml.read_text(encoding="utf-8"))
    version = data["workspace"]["package"]["version"]
    assert isinstance(version, str)
    return version


def pep440(cargo_version: str) -> str:
    """The PEP 440 spelling maturin gives a Cargo version: 1.2.0-rc.1 -> 1.2.0rc1."""
    match = re.fullmatch(r"(\d+\.\d+\.\d+)(?:-(alpha|beta|rc)\.(\d+))?", cargo_version)
    assert match is not None, f"not a version update_version.sh accepts: {cargo_version}"
    release, kind, number = match.groups()
    if kind is None:
        return release
    return f"{release}{PEP440_PRE_RELEASE[kind]}{number}"


def snapshot(root: Path) -> dict[str, bytes]:
    """The bytes of the manifests present under `root`."""
    return {name: (root / name).read_bytes() for name in MANIFESTS if (root / name).exists()}


def run_update_version(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert BASH is not None
    return subprocess.run(
        [BASH, str(UPDATE_VERSION), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of the repository's manifests and scripts/, to run the version script on."""
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in MANIFESTS:
        if (REPO_ROOT / name).exists():
            shutil.copy2(REPO_ROOT / name, copy / name)
    assert (copy / "Cargo.toml").exists()
    assert (copy / "CHANGELOG.md").exists()
    shutil.copytree(SCRIPTS_DIR, copy / "scripts")
    return copy


@needs_bash
def test_update_version_sets_workspace_version_and_changelog_in_the_copy_only(
    repo_copy: Path, tmp_path: Path
) -> None:
    real_before = snapshot(REPO_ROOT)
    copy_before = snapshot(repo_copy)
    old = workspace_version(repo_copy / "Cargo.toml")

    # Run from an unrelated directory: the script must not depend on the caller's cwd.
    result = run_update_version("9.8.7", "--root", str(repo_copy), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert workspace_version(repo_copy / "Cargo.toml") == "9.8.7"
    # Exactly one line of Cargo.toml changed: dependency versions are left alone.
    old_lines = copy_before["Cargo.toml"].decode().splitlines()
    new_lines = (repo_copy / "Cargo.toml").read_text(encoding="utf-8").splitlines()
    assert len(old_lines) == len(new_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines) if a != b]
    assert changed == [(f'version = "{old}"', 'version = "9.8.7"')]

    changelog = (repo_copy / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[.*$", changelog, flags=re.MULTILINE)
    assert headings[0] == "## [Unreleased]"
    assert re.fullmatch(r"## \[9\.8\.7\] - \d{4}-\d{2}-\d{2}", headings[1])
    assert f"## [{old}]" in changelog  # earlier releases are kept

    if "pyproject.toml" in copy_before:  # the version is dynamic: pyproject.toml is not edited
        assert (repo_copy / "pyproject.toml").read_bytes() == copy_before["pyproject.toml"]
    assert snapshot(REPO_ROOT) == real_before


@needs_bash
def test_update_version_moves_changelog_links_and_lock_entries(
    repo_copy: Path, tmp_path: Path
) -> None:
    old = workspace_version(repo_copy / "Cargo.toml")
    lock_before = (
        tomllib.loads((repo_copy / "Cargo.lock").read_text(encoding="utf-8"))
        if (repo_copy / "Cargo.lock").exists()
        else None
    )

    result = run_update_version(
        "--date", "2031-02-03", "--root", str(repo_copy), "1.0.0-rc.2", cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    changelog = (repo_copy / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "\n## [1.0.0-rc.2] - 2031-02-03\n" in changelog
    unreleased = re.search(r"^\[unreleased\]: (\S+)$", changelog, flags=re.MULTILINE)
    if unreleased is not None:
        assert unreleased.group(1).endswith("/compare/v1.0.0-rc.2...HEAD")
        assert re.search(
            rf"^\[1\.0\.0-rc\.2\]: \S+/compare/v{re.escape(old)}\.\.\.v1\.0\.0-rc\.2$",
            changelog,
            flags=re.MULTILINE,
        )
    if lock_before is not None:
        lock_after = tomllib.loads((repo_copy / "Cargo.lock").read_text(encoding="utf-8"))
        for before, after in zip(lock_before["package"], lock_after["package"]):
            assert before["name"] == after["name"]
            local = "source" not in before and before["version"] == old
            assert after["version"] == ("1.0.0-rc.2" if local else before["version"])


@needs_bash
def test_update_version_twice_adds_one_changelog_section(repo_copy: Path, tmp_path: Path) -> None:
    for _ in range(2):
        result = run_update_version("9.8.7", "--root", str(repo_copy), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    changelog = (repo_copy / "CHANGELOG.md").read_text(encoding="utf-8")
    assert changelog.count("## [9.8.7]") == 1


@needs_bash
@pytest.mark.parametrize(
    "bad_version", ["1.2", "abc", "1.2.3.4", "v1.2.3", "01.2.3", "1.2.3-rc1", "1.2.3-dev.1", ""]
)
def test_update_version_rejects_invalid_version_and_changes_nothing(
    repo_copy: Path, tmp_path: Path, bad_version: str
) -> None:
    before = snapshot(repo_copy)

    result = run_update_version(bad_version, "--root", str(repo_copy), cwd=tmp_path)

    assert result.returncode != 0
    assert (bad_version or "Usage") in result.stderr
    assert snapshot(repo_copy) == before


@needs_bash
def test_update_version_refuses_cargo_toml_without_workspace_version(
    repo_copy: Path, tmp_path: Path
) -> None:
    cargo_toml = repo_copy / "Cargo.toml"
    text = cargo_toml.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^version = "[^"]*"\n', "", text, count=1)
    cargo_toml.write_text(text, encoding="utf-8")
    before = snapshot(repo_copy)

    result = run_update_version("9.8.7", "--root", str(repo_copy), cwd=tmp_path)

    assert result.returncode != 0
    assert "[workspace.package]" in result.stderr
    assert snapshot(repo_copy) == before


@needs_bash
@pytest.mark.parametrize(
    "name", ["update_version.sh", "build.sh", "release.sh", "test_all.sh", "lint.sh"]
)
def test_release_script_prints_usage_on_help(name: str, tmp_path: Path) -> None:
    assert BASH is not None
    result = subprocess.run(
        [BASH, str(SCRIPTS_DIR / name), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: {name}")


@needs_bash
def test_release_dry_run_refuses_a_version_cargo_toml_does_not_have(
    repo_copy: Path, tmp_path: Path
) -> None:
    old = workspace_version(repo_copy / "Cargo.toml")
    other = "9.9.9" if old != "9.9.9" else "9.9.8"
    assert BASH is not None

    result = subprocess.run(
        [BASH, str(repo_copy / "scripts" / "release.sh"), other, "--dry-run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    # It stops at the checks, before building anything.
    assert result.returncode != 0
    assert f"scripts/update_version.sh {other}" in result.stderr
    assert "build" not in result.stdout.split("1/4 checks", 1)[-1]


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps = job.get("steps", [])
    assert isinstance(steps, list)
    return steps


def test_workflow_tests_every_os_and_python_and_runs_pytest() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    jobs: dict[str, dict[str, Any]] = workflow["jobs"]

    matrix_jobs = [
        job
        for job in jobs.values()
        if {"os", "python-version"} <= set(job.get("strategy", {}).get("matrix", {}))
    ]
    assert matrix_jobs, "no job has an os x python-version matrix"
    test_job = matrix_jobs[0]
    matrix = test_job["strategy"]["matrix"]
    assert {"ubuntu-latest", "macos-latest", "windows-latest"} <= set(matrix["os"])
    # Strings, not numbers: YAML would read an unquoted 3.10 as 3.1.
    assert matrix["python-version"] == ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
    runs = [str(step.get("run", "")) for step in _steps(test_job)]
    assert any("pytest" in run for run in runs), "the test matrix never runs pytest"

    uses = {str(step.get("uses", "")) for job in jobs.values() for step in _steps(job)}
    assert any(use.startswith("PyO3/maturin-action@") for use in uses)
    assert any(use.startswith("Swatinem/rust-cache@") for use in uses)
    publishers = [
        job
        for job in jobs.values()
        if any(
            str(step.get("uses", "")).startswith("pypa/gh-action-pypi-publish@")
            for step in _steps(job)
        )
    ]
    assert len(publishers) == 1
    assert "refs/tags/v" in str(publishers[0].get("if", ""))


@needs_bash
@pytest.mark.parametrize("script", SCRIPTS, ids=[script.name for script in SCRIPTS])
def test_script_is_valid_executable_strict_bash(script: Path) -> None:
    assert BASH is not None
    result = subprocess.run([BASH, "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(script, os.X_OK), f"{script.name} is not executable"


def test_release_scripts_exist() -> None:
    names = {script.name for script in SCRIPTS}
    expected = {"update_version.sh", "build.sh", "release.sh", "test_all.sh", "lint.sh"}
    assert expected <= names


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck is not None
    result = subprocess.run(
        [shellcheck, *map(str, SCRIPTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_version_agreement() -> None:
    # Imported here so that the tests above run before the extension is built.
    import nusterdb

    cargo_version = workspace_version(REPO_ROOT / "Cargo.toml")
    # X.Y.Z everywhere; for a pre-release the extension may give Cargo's spelling (1.0.0-rc.1)
    # or PEP 440's (1.0.0rc1), while the installed metadata always has PEP 440's.
    assert nusterdb.__version__ in (cargo_version, pep440(cargo_version))
    assert importlib.metadata.version("nusterdb") == pep440(cargo_version)
