"""suites/vbench.yaml: valid, and each entry resolves to VBench's protocol where it claims one."""
from vdeval import registry
from vdeval.suite import load_suite


def test_vbench_suite_is_valid_and_names_vbench_protocols():
    s = load_suite("suites/vbench.yaml")
    by_label = {m.label or m.name: m for m in s.metrics}
    assert set(by_label) == {"subject_consistency", "dynamic_degree", "temporal_flickering", "aesthetic_quality",
                             "imaging_quality", "motion_blur"}
    for m in s.metrics:
        metric = registry.resolve("metric", m.name)(backbone=m.backbone, **m.params)
        assert m.backbone is None or m.backbone in metric.allowed_backbones
        if m.backbone:
            registry.check_name("backbone", m.backbone)
    assert by_label["subject_consistency"].backbone == "dino_vbench"
    assert registry.resolve("metric", "identity_drift")(backbone="dino_vbench", aggregate="pairs").summary_weight() == "n_pairs"
    assert by_label["dynamic_degree"].backbone == "raft_vbench"
    assert by_label["imaging_quality"].backbone == "musiq"
