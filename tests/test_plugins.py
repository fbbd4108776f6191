"""Plugins through entry points: a tiny plugin package (a generator, a backbone and a metric) is
installed into a folder on sys.path, as pip would install it, and a suite runs it; names are
checked when registered; `names()` lists only what can load."""
import json
import sys
import textwrap

import pytest
import yaml

from helpers import cli_exit_code
from vdeval import registry
from vdeval.errors import UnknownNameError

PLUGIN = '''
"""A tiny vdeval plugin: flat grey clips, a luma backbone and a brightness metric."""
import numpy as np
from pydantic import Field

from vdeval.backbones.base import Backbone
from vdeval.features import FeatureRequest
from vdeval.generators.base import GeneratedClip, Generator, GeneratorConfig
from vdeval.metrics.base import ClipScore, Metric
from vdeval.video import Video


class GreyConfig(GeneratorConfig):
    level: int = Field(128, ge=0, le=255)


class GreyGenerator(Generator):
    kind = "demo_grey"
    Config = GreyConfig

    def generate(self, requests, device="cpu"):
        for i, r in enumerate(requests):
            level = self.config.level + i  # clip i is one grey level brighter than clip i - 1
            yield GeneratedClip(r, Video(np.full((4, 16, 16, 3), level, np.uint8), 8.0))


class LumaBackbone(Backbone):
    name = "demo_luma"
    version = "1"
    provides = ("frame_score",)
    protocol = "mean of the RGB values / 255, per frame"

    def compute(self, kind, clips):
        return [{"value": c.video.frames.reshape(c.video.num_frames, -1).mean(1) / 255.0} for c in clips]


class Brightness(Metric):
    name = "demo_brightness"
    version = "1"
    higher_is_better = True
    level = "clip"
    default_backbone = "demo_luma"

    def requests(self):
        return [FeatureRequest("frame_score", self.backbone)]

    def score_clip(self, clip):
        v = clip.value("frame_score", self.backbone)
        return ClipScore(float(v.mean()), curve=[float(x) for x in v])
'''


def install(site, dist: str, entry_points: dict, modules: dict | None = None, requires: tuple = ()) -> None:
    """Write a distribution the way pip installs one: its modules and a .dist-info folder."""
    for name, source in (modules or {}).items():
        (site / name).mkdir(parents=True, exist_ok=True)
        (site / name / "__init__.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {dist}", "Version: 0.1", *[f"Requires-Dist: {r}" for r in requires]]
    (info / "METADATA").write_text("\n".join(meta) + "\n")
    lines = []
    for group, entries in entry_points.items():
        lines += [f"[{group}]", *[f"{k} = {v}" for k, v in entries.items()], ""]
    (info / "entry_points.txt").write_text("\n".join(lines))


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path to install plugins into; plugins are read again before and after."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    registry.reload_plugins()
    yield folder
    monkeypatch.undo()
    for name in [m for m, mod in sys.modules.items() if str(getattr(mod, "__file__", "")).startswith(str(folder))]:
        del sys.modules[name]  # the next test's plugin of the same name is imported afresh
    registry.reload_plugins()


DEMO = {"vdeval.metrics": {"demo_brightness": "vdeval_demo_plugin:Brightness"},
        "vdeval.backbones": {"demo_luma": "vdeval_demo_plugin:LumaBackbone"},
        "vdeval.generators": {"demo_grey": "vdeval_demo_plugin:GreyGenerator"}}


def test_a_suite_runs_an_installed_plugin(site, tmp_path, capsys):
    install(site, "vdeval-demo-plugin", DEMO, {"vdeval_demo_plugin": PLUGIN})
    assert "demo_brightness" in registry.names("metric") and "demo_luma" in registry.names("backbone")
    suite = tmp_path / "plugin.yaml"
    suite.write_text(textwrap.dedent("""\
        name: plugin
        prompts: {source: list, items: [first, second]}
        generators:
          - {name: grey, kind: demo_grey, level: 51}
        metrics:
          - {name: demo_brightness}
        output: {dir: out, report: false}
        """))
    assert cli_exit_code(["validate", str(suite)]) == 0
    assert cli_exit_code(["run", str(suite), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "demo_brightness" in out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    text = json.dumps(results)
    # known answers: grey levels 51 and 52 give 0.2 and 52/255; the backbone is named in results
    scores = sorted(c["scores"]["demo_brightness"]["value"] if isinstance(c["scores"]["demo_brightness"], dict)
                    else c["scores"]["demo_brightness"] for c in results["clips"])
    assert scores == pytest.approx([51 / 255, 52 / 255], abs=1e-12)
    assert "demo_luma" in text


def test_a_plugin_param_error_is_reported_like_a_builtin(site, tmp_path, capsys):
    install(site, "vdeval-demo-plugin", DEMO, {"vdeval_demo_plugin": PLUGIN})
    suite = tmp_path / "bad.yaml"
    suite.write_text(yaml.safe_dump({"name": "bad", "prompts": {"source": "list", "items": ["a"]},
                                     "generators": [{"name": "g", "kind": "demo_grey", "levle": 3}],
                                     "metrics": [{"name": "demo_brightnes"}]}))
    assert cli_exit_code(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "generators[0].levle: unknown key (did you mean 'level'?)" in err
    assert "did you mean 'demo_brightness'?" in err


@pytest.mark.parametrize("name, why", [("fvd", "one of vdeval's own metrics"), ("Bright-Ness", "not a valid name"),
                                       ("9lives", "not a valid name")])
def test_plugin_names_are_checked(site, name, why):
    install(site, "vdeval-bad-plugin", {"vdeval.metrics": {name: "somewhere:Thing"}})
    with pytest.raises(registry.PluginError, match=why) as e:
        registry.names("metric")
    assert "plugin vdeval-bad-plugin" in str(e.value)


def test_two_plugins_cannot_register_one_name(site):
    install(site, "plugin-one", {"vdeval.metrics": {"sharp": "one:Sharp"}})
    install(site, "plugin-two", {"vdeval.metrics": {"sharp": "two:Sharp"}})
    with pytest.raises(registry.PluginError, match="already registered by plugin plugin-"):
        registry.names("metric")


def test_a_plugin_whose_extra_is_missing_is_listed_as_unavailable(site):
    install(site, "vdeval-fancy", {"vdeval.backbones": {"fancy": "vdeval_fancy:Fancy [gpu]"}},
            {"vdeval_fancy": "Fancy = object\n"}, requires=('no-such-dist-xyz>=1; extra == "gpu"',))
    assert "fancy" not in registry.names("backbone")
    assert "no-such-dist-xyz" in registry.unavailable("backbone")["fancy"]
    with pytest.raises(UnknownNameError, match=r"cannot load here: needs no-such-dist-xyz \(pip install 'vdeval-fancy\[gpu\]'\)"):
        registry.resolve("backbone", "fancy")


def test_listing_names_imports_no_plugin(site):
    install(site, "vdeval-heavy", {"vdeval.metrics": {"heavy": "vdeval_heavy.metrics:Heavy"}},
            {"vdeval_heavy": "raise RuntimeError('imported while listing names')\n"})
    install(site, "vdeval-absent", {"vdeval.metrics": {"absent": "vdeval_not_installed.metrics:Absent"}})
    assert "heavy" in registry.names("metric") and "vdeval_heavy" not in sys.modules
    assert registry.unavailable("metric") == {"absent": "package vdeval_not_installed is not installed"}


def test_a_plugin_that_does_not_import_says_so(site):
    install(site, "vdeval-broken", {"vdeval.metrics": {"broken": "vdeval_broken:Missing"}},
            {"vdeval_broken": "raise ImportError('needs libfoo')\n"})
    with pytest.raises(registry.PluginError, match="metric 'broken' from plugin vdeval-broken does not load"):
        registry.resolve("metric", "broken")
    install(site, "vdeval-heavy", {"vdeval.metrics": {"heavy": "vdeval_heavy.metrics:Heavy"}},
            {"vdeval_heavy": "raise RuntimeError('no GPU')\n"})
    registry.reload_plugins()
    with pytest.raises(registry.PluginError, match=r"'heavy' from plugin vdeval-heavy does not load \(RuntimeError: no GPU\)"):
        registry.resolve("metric", "heavy")


def test_a_backbone_whose_library_is_missing_is_not_listed(monkeypatch):
    monkeypatch.setitem(registry.REQUIRES["backbone"], "clip", ("no_such_library_xyz",))
    assert "clip" not in registry.names("backbone") and "dino" in registry.names("backbone")
    assert registry.unavailable("backbone") == {"clip": "needs no_such_library_xyz (pip install no_such_library_xyz)"}
    with pytest.raises(UnknownNameError, match="backbone 'clip' cannot load here: needs no_such_library_xyz"):
        registry.check_name("backbone", "clip")


def test_register_at_run_time_checks_names():
    class Mine:
        pass

    registry.register("metric", "my_metric", Mine)
    try:
        assert registry.resolve("metric", "my_metric") is Mine
        with pytest.raises(registry.PluginError, match="already registered by register()"):
            registry.register("metric", "my_metric", Mine)
        with pytest.raises(registry.PluginError, match="vdeval's own"):
            registry.register("backbone", "dis", Mine)
        with pytest.raises(registry.PluginError, match="unknown registry kind"):
            registry.register("metrics", "x", Mine)
    finally:
        registry.unregister("metric", "my_metric")
    assert "my_metric" not in registry.names("metric")
