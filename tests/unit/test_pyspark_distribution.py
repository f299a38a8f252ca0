"""The installed pyspark is the full 4.3.0 distribution, not files of ``pyspark-client`` laid over it.

The Spark provider depends on ``pyspark-client``, which installs into the same ``pyspark/`` package
folder as the full wheel and overwrites some of its files (seen: ``pyspark.__version__`` turned into
the client's). ``scripts/setup_venv.sh`` force-reinstalls pyspark last; this test catches a venv where
that did not happen. pyspark is located through importlib, not ``SPARK_HOME``, so that a correct
SPARK_HOME cannot hide a broken installed package.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path

import pytest

EXPECTED_VERSION = "4.3.0"


@pytest.fixture(scope="module")
def pyspark_home() -> Path:
    spec = importlib.util.find_spec("pyspark")
    assert spec is not None and spec.submodule_search_locations, "pyspark is not installed"
    locations = list(spec.submodule_search_locations)
    assert len(locations) == 1, f"pyspark is a namespace package split over {locations}"
    return Path(locations[0])


def test_pyspark_version_is_the_full_distribution() -> None:
    import pyspark

    assert pyspark.__version__ == EXPECTED_VERSION, (
        f"pyspark.__version__ is {pyspark.__version__}: pyspark-client overwrote the full wheel; "
        "force-reinstall pyspark (scripts/setup_venv.sh)"
    )
    assert importlib.metadata.version("pyspark") == EXPECTED_VERSION


def test_pyspark_version_module_matches_metadata(pyspark_home: Path) -> None:
    """``pyspark/version.py`` is one of the files both wheels ship; it must be the full wheel's."""
    text = (pyspark_home / "version.py").read_text(encoding="utf-8")
    assert f'"{EXPECTED_VERSION}"' in text or f"'{EXPECTED_VERSION}'" in text, text


@pytest.mark.parametrize("name", ["spark-submit", "beeline", "spark-class", "spark-sql"])
def test_launchers_are_executable(pyspark_home: Path, name: str) -> None:
    launcher = pyspark_home / "bin" / name
    assert launcher.is_file(), f"{launcher} missing: the installed pyspark is not the full distribution"
    assert os.access(launcher, os.X_OK), f"{launcher} is not executable"


@pytest.mark.parametrize(
    "jar",
    [
        f"spark-core_2.13-{EXPECTED_VERSION}.jar",
        f"spark-sql_2.13-{EXPECTED_VERSION}.jar",
        f"spark-hive_2.13-{EXPECTED_VERSION}.jar",
        f"spark-hive-thriftserver_2.13-{EXPECTED_VERSION}.jar",
    ],
)
def test_distribution_jars_present(pyspark_home: Path, jar: str) -> None:
    path = pyspark_home / "jars" / jar
    assert path.is_file() and path.stat().st_size > 0, f"{path} missing or empty"


def test_no_other_spark_core_version(pyspark_home: Path) -> None:
    """Only one spark-core jar: a mix of versions means two distributions were laid over each other."""
    cores = sorted(p.name for p in (pyspark_home / "jars").glob("spark-core_*.jar"))
    assert cores == [f"spark-core_2.13-{EXPECTED_VERSION}.jar"], cores
