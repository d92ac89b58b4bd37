"""The decorators keep signatures for mypy: typing_api.py passes ``mypy --strict`` with no errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api as mypy_api

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


@pytest.mark.slow
def test_public_api_type_checks(tmp_path: Path) -> None:
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--warn-unused-ignores",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            str(HERE / "typing_api.py"),
        ]
    )
    assert status == 0, stdout + stderr
