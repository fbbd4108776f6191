"""The import layers of DESIGN.md, enforced: the import-linter contracts in pyproject.toml run in
`pytest` (and so in CI). A second run on a copy of the package with one upward import added shows
the contracts can fail."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("importlinter", reason="import-linter is in the `test` extra: pip install -e '.[test]'")


def _lint(package_root: Path) -> subprocess.CompletedProcess:
    """lint-imports with pyproject.toml's contracts on the `vdeval` found under package_root."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_root), os.environ.get("PYTHONPATH", "")])}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"],
                          cwd=package_root, env=env, capture_output=True, text=True, timeout=120)


def test_the_layer_contracts_hold():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout and "vdeval layers" in out.stdout


def test_an_upward_import_breaks_the_contracts(tmp_path):
    for package in ("vdeval", "reference_models"):  # both root packages of the contracts
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns(
            "__pycache__", "*.safetensors", "*.npz", "*.json", "*.md", "checkpoints"))
    suite = tmp_path / "vdeval" / "suite.py"
    suite.write_text(suite.read_text() + "\n\ndef _upward():\n    from vdeval.check import parse_rules  # hidden in a function\n")
    out = _lint(tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "vdeval.suite -> vdeval.check" in out.stdout and "2 broken" in out.stdout
