"""suites/vbench.yaml: valid, on VBench's prompt suite, and each entry resolves to VBench's protocol
where it claims one (the protocols `vdeval export --format vbench` writes)."""
from vdeval import registry
from vdeval.export.vbench import DIMENSIONS
from vdeval.prompt_suites import vbench_prompts
from vdeval.suite import load_suite


def test_vbench_suite_is_valid_and_names_vbench_protocols():
    s = load_suite("suites/vbench.yaml")
    by_label = {m.label or m.name: m for m in s.metrics}
    assert set(by_label) == {"subject_consistency", "background_consistency", "dynamic_degree", "temporal_flickering",
                             "aesthetic_quality", "imaging_quality", "motion_smoothness", "motion_blur"}
    assert s.prompts.source == "vbench" and s.samples_per_prompt == 5
    assert set(s.prompts.dimensions) == {d.name for d in DIMENSIONS}
    ran = {(m.name, m.backbone or registry.resolve("metric", m.name).default_backbone) for m in s.metrics}
    assert {(d.metric, d.backbone) for d in DIMENSIONS} <= ran  # every exported dimension is run
    for m in s.metrics:
        metric = registry.resolve("metric", m.name)(backbone=m.backbone, **m.params)
        assert m.backbone is None or m.backbone in metric.allowed_backbones
        if m.backbone:
            registry.check_name("backbone", m.backbone)
    assert by_label["subject_consistency"].backbone == "dino_vbench"
    assert registry.resolve("metric", "identity_drift")(backbone="dino_vbench", aggregate="pairs").summary_weight() == "n_pairs"
    assert by_label["dynamic_degree"].backbone == "raft_vbench"
    assert by_label["background_consistency"].backbone == "clip_vbench"
    assert by_label["imaging_quality"].backbone == "musiq"


def test_vbench_prompts_cover_the_suite_dimensions():
    s = load_suite("suites/vbench.yaml")
    prompts = vbench_prompts(s.prompts.dimensions)
    assert len(prompts) == len({p for p, _ in prompts})  # each prompt once
    for dim in s.prompts.dimensions:
        assert sum(dim in d for _, d in prompts) >= 70  # VBench: 72-100 prompts a dimension
