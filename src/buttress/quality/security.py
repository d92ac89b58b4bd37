"""Security: bandit's findings by severity and confidence, and a dependency audit with pip-audit.

**bandit** runs in-process on the measured files (its Python API: one manager, every test but the
profile's ``security.skip``). A finding counts toward ``security_high``/``_medium``/``_low`` by its
severity when its confidence is at least the profile's ``security.confidence`` (``medium`` by default).

**pip-audit** runs as a subprocess (its JSON output is its stable interface) on the profile's
``security.requirements`` files, or on this environment when there are none (editable installs — the
project itself — are skipped: they are not dependencies). ``vulnerabilities`` counts known
vulnerabilities not listed in ``security.ignore``.

pip-audit exits 0 and prints "No known vulnerabilities found" even when it could check nothing (every
dependency skipped because the vulnerability service could not be reached or did not know it). Here a
dependency that could not be checked is a finding, and ``vulnerabilities`` is then *not measured*
(exit code 2) rather than reported as 0; so is an audit that fails to run (no network, unreachable
index).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buttress.errors import MeasureError

if TYPE_CHECKING:
    from buttress.quality.gate import Context, Measurement
    from buttress.quality.model import Finding
    from buttress.quality.profiles import SecuritySettings

__all__ = ["AuditResult", "SecurityMeasure", "audit_dependencies", "bandit_findings"]

_RANK = {"LOW": 0, "MEDIUM": 1, "HIGH": 2, "UNDEFINED": 0}


def bandit_findings(paths: list[Path], root: Path, confidence: str, skip: tuple[str, ...]) -> list[Finding]:
    """Run bandit on ``paths``; findings at or above ``confidence``, rule ``security.<test id>``.

    Raises:
        MeasureError: bandit is not installed.
    """
    from buttress.quality.model import Finding
    from buttress.quality.sources import relative

    try:
        with warnings.catch_warnings():
            # bandit's plugin loading (stevedore) trips deprecations of its own dependencies at import
            # and when a manager is built; they are theirs to fix and say nothing about the code measured.
            warnings.simplefilter("ignore", DeprecationWarning)
            from bandit.core import config as b_config
            from bandit.core import manager as b_manager
    except ImportError:
        raise MeasureError(
            "bandit is not installed; the security measure needs the 'quality' extra: "
            "pip install 'buttress[quality]'"
        ) from None
    if not paths:
        return []
    logger = logging.getLogger("bandit")
    level = logger.level
    logger.setLevel(logging.ERROR)  # bandit logs progress at INFO/WARNING; the report says what matters
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # as above
            manager = b_manager.BanditManager(
                b_config.BanditConfig(), "file", quiet=True, profile={"include": [], "exclude": list(skip)}
            )
            manager.discover_files([str(p) for p in paths], recursive=False)
            manager.run_tests()
        issues = manager.get_issue_list(sev_level="LOW", conf_level=confidence.upper())
    finally:
        logger.setLevel(level)
    out = []
    for issue in issues:
        rel = relative(Path(issue.fname), root)
        lines = issue.linerange or [issue.lineno]
        severity = str(issue.severity).lower()
        text = issue.get_code() or ""
        content = " ".join(" ".join(line.split()[1:]) for line in text.splitlines())
        out.append(
            Finding(
                f"security.{issue.test_id}",
                rel,
                min(lines),
                max(lines),
                f"{issue.test_id} ({severity} severity, {str(issue.confidence).lower()} confidence): "
                f"{issue.text}",
                "error" if severity == "high" else "warning",
                content,
                False,
                {
                    "severity": severity,
                    "confidence": str(issue.confidence).lower(),
                    "test": issue.test_id,
                    "cwe": getattr(getattr(issue, "cwe", None), "id", None),
                },
            )
        )
    return out


class AuditResult:
    """What pip-audit found: vulnerabilities, and dependencies it could not check.

    Attributes:
        vulnerabilities: ``(name, version, id, fix versions, description, source)`` per finding.
        unaudited: ``(name, reason, source)`` per dependency that could not be checked.
        audited: how many dependencies were checked.
    """

    __slots__ = ("audited", "unaudited", "vulnerabilities")

    def __init__(self) -> None:
        self.vulnerabilities: list[tuple[str, str, str, list[str], str, str]] = []
        self.unaudited: list[tuple[str, str, str]] = []
        self.audited = 0


def audit_dependencies(settings: SecuritySettings, root: Path) -> AuditResult:
    """Run pip-audit on each requirements file (or this environment) and gather its JSON.

    Raises:
        MeasureError: pip-audit is missing, cannot run, cannot reach its index or service, or times out.
    """
    if importlib.util.find_spec("pip_audit") is None:
        raise MeasureError(
            "pip-audit is not installed; the dependency audit needs the 'quality' extra: "
            "pip install 'buttress[quality]'"
        )
    result = AuditResult()
    for name, args in _audit_sources(settings, root):
        _collect(result, _run_pip_audit(settings, args, name), name, settings.ignore)
    return result


def _audit_sources(settings: SecuritySettings, root: Path) -> list[tuple[str, list[str]]]:
    """``(what, pip-audit arguments)`` for each requirements file, or for this environment."""
    if not settings.requirements:
        return [("environment", ["--skip-editable"])]
    sources = []
    for req in settings.requirements:
        path = (root / req) if not Path(req).is_absolute() else Path(req)
        if not path.is_file():
            raise MeasureError(f"security.requirements names {req}, which does not exist")
        # A pinned lock file needs no resolver; an index URL means "resolve through this index".
        extra = ["--index-url", settings.index_url] if settings.index_url else ["--no-deps", "--disable-pip"]
        sources.append((req, ["-r", str(path), *extra]))
    return sources


def _collect(result: AuditResult, data: dict[str, Any], source: str, ignore: tuple[str, ...]) -> None:
    """Add one pip-audit JSON document's vulnerabilities and skipped dependencies to ``result``."""
    for dep in data.get("dependencies", []):
        if "skip_reason" in dep:
            result.unaudited.append((dep.get("name", "?"), dep["skip_reason"], source))
            continue
        result.audited += 1
        for vuln in dep.get("vulns", []):
            ids = [vuln.get("id", "?"), *vuln.get("aliases", [])]
            if not any(i in ignore for i in ids):
                result.vulnerabilities.append(
                    (
                        dep["name"],
                        dep.get("version", "?"),
                        ids[0],
                        list(vuln.get("fix_versions", [])),
                        str(vuln.get("description", "")),
                        source,
                    )
                )


def _run_pip_audit(settings: SecuritySettings, args: list[str], source: str) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "pip_audit",
        "-f",
        "json",
        "--progress-spinner",
        "off",
        "-s",
        settings.service,
        "--timeout",
        str(int(max(1, settings.timeout))),
        *args,
    ]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=settings.timeout * 3, check=False)
    except subprocess.TimeoutExpired:
        raise MeasureError(f"pip-audit on {source} ran past {settings.timeout * 3:g}s (network?)") from None
    # pip-audit exits 1 when it finds vulnerabilities, and also when it fails; the JSON tells them apart.
    try:
        data = json.loads(done.stdout) if done.stdout.strip() else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        tail = "\n".join(done.stderr.strip().splitlines()[-6:])
        raise MeasureError(
            f"pip-audit could not audit {source} (exit code {done.returncode}); is the package index and "
            f"the vulnerability service reachable? Its last words:\n{tail}"
        )
    return data


class SecurityMeasure:
    """The ``security`` measure: bandit counts by severity, and known dependency vulnerabilities."""

    name: str = "security"
    metrics: tuple[str, ...] = ("security_high", "security_medium", "security_low", "vulnerabilities")

    def compute(self, context: Context) -> Measurement:
        """Run bandit and pip-audit as the profile says."""
        from buttress.quality.gate import Measurement

        settings = context.profile.security
        out = Measurement(self.name)
        if settings.bandit:
            self._bandit(out, context, settings)
        else:
            for metric in ("security_high", "security_medium", "security_low"):
                out.skipped[metric] = out.skipped_new[metric] = "bandit is switched off in this profile"
        if settings.audit:
            try:
                self._audit(out, context, settings)
            except MeasureError as exc:
                out.unmeasured.append(str(exc))
        else:
            out.skipped["vulnerabilities"] = "the dependency audit is switched off in this profile"
        return out

    def _bandit(self, out: Measurement, context: Context, settings: SecuritySettings) -> None:
        from dataclasses import replace

        problems = {p.path for p in context.problems}
        from buttress.quality.sources import relative

        paths = [p for p in context.files if relative(p, context.root) not in problems]
        findings = [
            replace(f, new=context.touches_new(f.path, f.line, f.end_line))
            for f in bandit_findings(paths, context.root, settings.confidence, settings.skip)
        ]
        out.findings.extend(findings)
        for severity in ("high", "medium", "low"):
            metric = f"security_{severity}"
            items = [(1.0, f) for f in findings if f.properties["severity"] == severity]
            out.items[metric] = items
            out.overall[metric] = float(len(items))
            if context.new_lines is not None:
                out.new_items[metric] = [(v, f) for v, f in items if f.new]
                out.new[metric] = float(len(out.new_items[metric]))

    def _audit(self, out: Measurement, context: Context, settings: SecuritySettings) -> None:
        self.record_audit(out, context, audit_dependencies(settings, context.root))

    def record_audit(self, out: Measurement, context: Context, result: AuditResult) -> None:
        """Turn pip-audit's results into findings and the ``vulnerabilities`` figure (or "unmeasured")."""
        from buttress.quality.model import Finding

        items = []
        for name, version, vid, fixes, description, source in result.vulnerabilities:
            where, line = self._locate(context, source, name)
            fix = f"; fixed in {', '.join(fixes)}" if fixes else "; no fixed version yet"
            message = f"{name} {version}: {vid}{fix}. {description[:200]}"
            props = {"package": name, "version": version, "id": vid, "fix": fixes}
            finding = Finding(
                "security.vulnerability", where, line, line, message, "error", f"{name}|{vid}", False, props
            )
            items.append((1.0, finding))
        for name, reason, source in result.unaudited:
            where, line = self._locate(context, source, name)
            out.findings.append(
                Finding(
                    "security.unaudited",
                    where,
                    line,
                    line,
                    f"{name} could not be audited: {reason}",
                    "warning",
                    f"{name}|unaudited",
                    False,
                    {"package": name},
                )
            )
        out.items["vulnerabilities"] = items
        out.findings.extend(f for _, f in items)
        out.details["audit"] = {"audited": result.audited, "unaudited": len(result.unaudited)}
        if result.unaudited:
            names = ", ".join(sorted({n for n, _, _ in result.unaudited})[:10])
            out.unmeasured.append(
                f"{len(result.unaudited)} dependenc{'y' if len(result.unaudited) == 1 else 'ies'} "
                "could not be "
                f"audited ({names}{'…' if len(result.unaudited) > 10 else ''}; first reason: "
                f"{result.unaudited[0][1]!r}): pip-audit skipped "
                f"{'it' if len(result.unaudited) == 1 else 'them'}, "
                "so 'no known vulnerability' would be a guess"
            )
            return
        out.overall["vulnerabilities"] = float(len(items))

    @staticmethod
    def _locate(context: Context, source: str, package: str) -> tuple[str, int]:
        if source == "environment":
            return (
                "pyproject.toml" if (context.root / "pyproject.toml").is_file() else "requirements.txt"
            ), 1
        lines = context.lines(source)
        key = package.lower().replace("_", "-")
        for i, line in enumerate(lines, 1):
            if line.strip().lower().replace("_", "-").startswith(key):
                return source, i
        return source, 1
