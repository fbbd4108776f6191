
import pytest

from vdeval.errors import SuiteError
from vdeval.suite import load_suite

from helpers import write_suite


GOOD = """
name: t
prompts: {source: list, items: ["a small red circle moving left slowly on a plain background"]}
generators:
  - {name: clean, kind: world}
metrics:
  - {name: frame_difference}
"""


def problems_of(path):
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert "\n" not in str(e.value)
    return e.value.problems


def test_good_suite_loads_with_defaults(tmp_path):
    s = load_suite(write_suite(tmp_path, GOOD))
    assert s.samples_per_prompt == 1 and s.world.height == 32
    assert s.metric_labels() == ["frame_difference"]


def test_shipped_smoke_suite_is_valid():
    s = load_suite("suites/smoke.yaml")
    assert [g["name"] for g in s.generators] == ["world", "flicker", "frozen", "early", "final", "ablation"]
    assert s.real is not None and all(m.backbone in (None, "dis") for m in s.metrics)  # offline backbones only


def test_misspelt_names_and_keys_get_suggestions(tmp_path):
    p = write_suite(tmp_path, """
    name: t
    promts: {source: world}
    generators:
      - {name: a, kind: wrold}
    metrics:
      - {name: frame_diference}
    """)
    probs = problems_of(p)
    assert any("promts" in x and "'prompts'" in x for x in probs)


def test_every_problem_reported_with_key_path(tmp_path):
    p = write_suite(tmp_path, """
    name: t
    generators:
      - {name: a, kind: wrold}
      - {name: b, kind: world, corruption: {name: flicker, severty: 0.3}}
      - {name: b, kind: world}
    metrics:
      - {name: frame_diference}
      - {name: frozen_motion, backbone: diss}
    """)
    probs = problems_of(p)
    text = "\n".join(probs)
    assert "generators[0].kind" in text and "'world'" in text
    assert "generators[1].corruption.severty" in text and "'severity'" in text
    assert "generators[2].name" in text and "twice" in text
    assert "metrics[0].name" in text and "'frame_difference'" in text
    assert "metrics[1].backbone" in text and "'dis'" in text


def test_wrong_types_and_missing_keys(tmp_path):
    p = write_suite(tmp_path, """
    name: t
    samples_per_prompt: many
    generators: []
    """)
    text = "\n".join(problems_of(p))
    assert "samples_per_prompt" in text and "metrics: required key is missing" in text and "generators" in text


def test_not_yaml_or_not_a_mapping(tmp_path):
    with pytest.raises(SuiteError, match="not valid YAML at line"):
        load_suite(write_suite(tmp_path, "name: [unclosed\n"))
    with pytest.raises(SuiteError, match="mapping"):
        load_suite(write_suite(tmp_path, "- just\n- a list\n"))
    with pytest.raises(SuiteError, match="no such suite file"):
        load_suite(tmp_path / "nope.yaml")


def test_include_merges_shared_parts_and_detects_cycles(tmp_path):
    write_suite(tmp_path, """
    world: {height: 24, width: 24}
    metrics:
      - {name: frame_difference}
    """, "base.yaml")
    p = write_suite(tmp_path, """
    include: base.yaml
    name: t
    world: {frames: 6}
    generators:
      - {name: clean, kind: world}
    """)
    s = load_suite(p)
    assert (s.world.height, s.world.width, s.world.frames) == (24, 24, 6)
    write_suite(tmp_path, "include: b.yaml\nname: a\n", "a.yaml")
    write_suite(tmp_path, "include: a.yaml\nname: b\n", "b.yaml")
    with pytest.raises(SuiteError, match="cycle"):
        load_suite(tmp_path / "a.yaml")


def test_world_settings_are_checked(tmp_path):
    p = write_suite(tmp_path, GOOD + "world: {colors: [red, mauve]}\n")
    assert any(x.startswith("world:") and "colors" in x for x in problems_of(p))


def test_checks_section_is_validated_with_the_suite(tmp_path):
    p = write_suite(tmp_path, GOOD + "checks:\n  - {metric: frame_difference, mxa: 3}\n")
    text = "\n".join(problems_of(p))
    assert "checks" in text and "'max'" in text


def test_backbone_on_a_metric_that_takes_none(tmp_path):
    p = write_suite(tmp_path, GOOD.replace("{name: frame_difference}", "{name: frame_difference, backbone: dis}"))
    assert any("frame_difference works with pixels, not 'dis'" in x for x in problems_of(p))
