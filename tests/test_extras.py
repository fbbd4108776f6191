"""Optional libraries stay optional: the smoke suite runs as if open_clip, timm, transformers and
accelerate were not installed, and a part that needs one stops with one line naming its extra."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vdeval import extras
from vdeval.errors import MissingExtraError

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("open_clip", "timm", "dlib")
NOT_NEEDED = OPTIONAL + ("transformers", "accelerate")  # the diffusers extra: only the diffusers generator

# run first in a fresh interpreter: the blocked libraries look not installed (find_spec finds
# nothing, import raises ModuleNotFoundError), as after a plain `pip install -e .`. Lookups are
# printed, not judged: libraries probe for optional ones (diffusers for timm and transformers).
BLOCKER = textwrap.dedent("""
    import atexit, sys
    from importlib.machinery import PathFinder
    BLOCKED = {blocked!r}
    looked_up = set()

    class NotInstalled(PathFinder):
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                looked_up.add(name)
                return None
            return PathFinder.find_spec(name, path, target)

    sys.meta_path[sys.meta_path.index(PathFinder)] = NotInstalled
    atexit.register(lambda: print("LOOKED UP:", sorted(looked_up)))
""")


def _run_blocked(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER.format(blocked=NOT_NEEDED) + textwrap.dedent(code)],
                          cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def test_smoke_suite_parts_load_without_the_optional_libraries(tmp_path):
    # fast: every generator, metric and backbone class of the smoke suite, its backbones built,
    # and the runner and report modules, in an interpreter where the optional libraries look absent
    proc = _run_blocked(f"""
        import importlib
        from vdeval import registry
        from vdeval.suite import load_suite
        suite = load_suite({str(ROOT / "suites" / "smoke.yaml")!r})
        for g in suite.generators:
            registry.resolve("generator", g["kind"])
        for m in suite.metrics:
            cls = registry.resolve("metric", m.name)
            cls(backbone=m.backbone)
            registry.resolve("backbone", m.backbone or cls.default_backbone)()
        importlib.import_module("reference_models.sampling")
        for module in ("vdeval.run.runner", "vdeval.report.build", "vdeval.check"):
            importlib.import_module(module)
        print("LOADED")
    """, tmp_path)
    assert "LOADED" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow  # about 20 s of CPU: the run itself
def test_smoke_suite_runs_without_the_optional_libraries(tmp_path):
    # the README's first command on 2 prompts and 8 real clips: every generator kind and metric of it
    suite = (ROOT / "suites" / "smoke.yaml").read_text().replace("count: 256", "count: 8")
    (tmp_path / "smoke.yaml").write_text(suite.replace("dir: ../runs/smoke", "dir: run"))
    proc = _run_blocked("""
        from vdeval import cli
        try:
            cli.main(["run", "smoke.yaml", "--limit", "2", "--no-progress"])
        except SystemExit as e:
            print("EXIT", e.code)
    """, tmp_path)
    out = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "EXIT" not in proc.stdout and proc.returncode == 0, out
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert not results["failures"], out


@pytest.mark.parametrize("module", OPTIONAL)
def test_require_names_the_extra(module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(MissingExtraError) as e:
        extras.require(module, "backbone 'x'")
    extra = extras.EXTRAS[module][0]
    assert str(e.value) == f"backbone 'x' needs {module}, which is not installed (pip install 'vdeval[{extra}]')"


def test_each_extra_is_declared_in_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["optional-dependencies"]
    for extra, dist in extras.EXTRAS.values():
        assert any(r.startswith(dist) for r in declared[extra]), (extra, dist)
    assert "vdeval[clip,dino,face,diffusers]" in declared["test"]
    assert not any(r.startswith(("open-clip", "timm", "transformers", "dlib")) for r in project["dependencies"])


def test_backbones_say_which_extra(monkeypatch):
    from vdeval.backbones.clip import ClipBackbone
    from vdeval.backbones.aesthetic import AestheticBackbone
    from vdeval.backbones.dino import DinoBackbone

    for module in OPTIONAL:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=r"^backbone 'clip' needs open_clip.*vdeval\[clip\]"):
        ClipBackbone()
    with pytest.raises(MissingExtraError, match=r"^backbone 'laion_aesthetic' needs open_clip.*vdeval\[clip\]"):
        AestheticBackbone()
    with pytest.raises(MissingExtraError, match=r"^backbone 'dino' needs timm.*vdeval\[dino\]"):
        DinoBackbone()
