"""The code stays ruff clean, including Airflow's AIR rules (no Airflow 2 leftovers), and shell-free."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ["dags", "plugins", "include", "tests"]


def _ruff() -> str:
    found = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    assert Path(found).exists(), "ruff is not installed in the venv (requirements-dev.txt)"
    return found


def test_ruff_check_is_clean() -> None:
    out = subprocess.run(
        [_ruff(), "check", "--no-cache", *SOURCE_DIRS], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_no_shell_strings_in_product_code() -> None:
    pattern = re.compile(r"shell\s*=\s*True|os\.system\(|os\.popen\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("dags", "plugins", "include")
        for path in (ROOT / folder).rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_mypy_is_clean_on_the_package() -> None:
    mypy = Path(sys.executable).with_name("mypy")
    assert mypy.exists(), "mypy is not installed in the venv (requirements-dev.txt)"
    out = subprocess.run(
        [str(mypy), "--no-incremental", "plugins"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
