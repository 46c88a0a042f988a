"""pip-audit of the installed dependencies: no package with a known vulnerability.

The project has no separate lock file: what `dev.py` installs into `.venv` from
pyproject.toml is what runs, so that environment is audited (`pip-audit --local
--skip-editable`: the project itself is not a PyPI package). It is a test rather
than a step of its own in .ci/run so that every run of the README's test command
(CI's included) audits, and so the rule that decides pass, fail or skip is itself
tested below on canned reports.

pip-audit asks the PyPI JSON API (its default vulnerability service) about each
package. Where that service cannot answer (no network, or a package index that is
not PyPI and answers "not found" for everything), pip-audit skips every package and
still exits 0, "No known vulnerabilities found": a silent pass. Here that is a skip
with the exact reason instead, and only that: a vulnerability, or a failure of any
other kind, fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PIP_AUDIT = Path(sys.executable).with_name("pip-audit")
UNREACHABLE = ("ConnectionError", "NameResolutionError", "Max retries exceeded", "timed out")
NOT_ON_SERVICE = "not found on PyPI"


@dataclass(frozen=True)
class Verdict:
    vulnerable: list[str]  # "name version: ID (fixed in …)"
    audited: int
    skipped: dict[str, str]  # name → pip-audit's reason

    @property
    def service_answered(self) -> bool:
        """False when the service knew none of the packages it was asked about:
        nothing was audited (the project itself is skipped as editable, unasked)."""
        return self.audited > 0 or not any(
            NOT_ON_SERVICE in reason for reason in self.skipped.values()
        )


def verdict(report: dict[str, Any]) -> Verdict:
    """pip-audit's `--format json` report, summarised."""
    vulnerable, audited, skipped = [], 0, {}
    for dependency in report["dependencies"]:
        if "skip_reason" in dependency:
            skipped[dependency["name"]] = dependency["skip_reason"]
            continue
        audited += 1
        for vuln in dependency.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            vulnerable.append(
                f"{dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixes})"
            )
    return Verdict(vulnerable, audited, skipped)


def not_found(name: str) -> dict[str, str]:
    return {"name": name, "skip_reason": f"Dependency {NOT_ON_SERVICE} and could not be audited"}


def test_verdict_reports_each_vulnerability() -> None:
    report = {
        "dependencies": [
            {"name": "jinja2", "version": "2.10", "vulns": [
                {"id": "PYSEC-2019-217", "fix_versions": ["2.10.1"]},
                {"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": []},
            ]},
            {"name": "httpx", "version": "0.28.1", "vulns": []},
            not_found("entativa-private-wheel"),
        ]
    }  # fmt: skip
    found = verdict(report)
    assert found.vulnerable == [
        "jinja2 2.10: PYSEC-2019-217 (fixed in 2.10.1)",
        "jinja2 2.10: GHSA-h5c8-rqwp-cp95 (fixed in no fix yet)",
    ]
    assert found.audited == 2 and found.service_answered
    assert list(found.skipped) == ["entativa-private-wheel"]


def test_verdict_knows_a_service_that_answered_nothing() -> None:
    editable = {"name": "entativa-graph", "skip_reason": "distribution marked as editable"}
    silent = verdict({"dependencies": [not_found("httpx"), not_found("starlette"), editable]})
    assert not silent.service_answered and silent.vulnerable == []
    clean = {"name": "starlette", "version": "0.46.0", "vulns": []}
    assert verdict({"dependencies": [not_found("httpx"), clean, editable]}).service_answered


def test_installed_dependencies_have_no_known_vulnerabilities() -> None:
    assert PIP_AUDIT.exists(), "pip-audit is missing: it is in the test extra (python3 dev.py test)"
    command = [str(PIP_AUDIT), "--local", "--skip-editable", "--format", "json"]
    done = subprocess.run(
        [*command, "--progress-spinner", "off"], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0 and not done.stdout.strip():
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        if any(sign in done.stderr for sign in UNREACHABLE):
            pytest.skip(f"the vulnerability service cannot be reached: {last}")
        pytest.fail(f"pip-audit failed (exit {done.returncode}): {done.stderr[-2000:]}")
    found = verdict(json.loads(done.stdout))
    if not found.service_answered:
        pytest.skip(
            "the vulnerability service answered for none of the "
            f"{sum(NOT_ON_SERVICE in r for r in found.skipped.values())} installed packages "
            "it was asked about (pip-audit: "
            f"{next(iter(found.skipped.values()), 'no packages')!r}): nothing was audited"
        )
    assert not found.vulnerable, "known vulnerabilities:\n" + "\n".join(found.vulnerable)
