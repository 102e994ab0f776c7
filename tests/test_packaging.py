"""One namespaced distribution: the built wheel installs everything under ``pmolens`` and nothing
under the card's plain folder names, so it sits next to any other package called ``api`` or
``warehouse`` without either shadowing the other."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("api", "connectors", "pipeline", "reports", "simulator", "warehouse")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*build, "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        cwd=out,
    )
    (built,) = out.glob("pmolens-*.whl")
    return built


def test_the_wheel_holds_only_the_pmolens_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"pmolens"}
    for folder in FOLDERS:  # every source module of every folder is in the wheel
        expected = {
            f"pmolens/{p.relative_to(ROOT).as_posix()}"
            for p in (ROOT / folder).rglob("*.py")
            if "__pycache__" not in p.parts
        }
        assert expected <= set(names), sorted(expected - set(names))[:5]
    assert "pmolens/reports/templates/steering.html.j2" in names


def test_installed_next_to_a_package_named_api(wheel: Path, tmp_path: Path) -> None:
    """A fresh venv with the wheel and an unrelated ``api`` package: both import as themselves,
    and every pmolens module imports from the wheel (not from this checkout)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
    subprocess.run(
        [*install, "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    (site / "api").mkdir()
    (site / "api" / "__init__.py").write_text("WHO = 'someone else'\n")
    # the dependencies (polars, duckdb, ...) from this environment, after the fresh ones
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = f"""
import importlib, pkgutil, api, pmolens
assert api.WHO == 'someone else', api
count = 0
for info in pkgutil.walk_packages(pmolens.__path__, 'pmolens.'):
    module = importlib.import_module(info.name)
    assert module.__file__.startswith({str(site)!r}), module.__file__
    count += 1
print(count)
"""
    done = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) > 60
