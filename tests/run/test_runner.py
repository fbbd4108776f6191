import json


from vdeval.results import RESULTS_VERSION
from vdeval.run.runner import Runner
from vdeval.video import write_video
from vdeval.world import sample_clip

from helpers import make_suite


BODY = """
name: r
world: {height: 24, width: 24, frames: 6}
prompts: {source: world, count: 4}
samples_per_prompt: 2
generators:
  - {name: clean, kind: world}
  - {name: frozen, kind: world, corruption: {name: freeze, severity: 1.0}}
metrics:
  - {name: frame_difference}
  - {name: frozen_motion, backbone: dis}
"""


def test_results_are_self_describing(tmp_path):
    out = Runner(make_suite(tmp_path, BODY), out=tmp_path / "run", progress=False).execute()
    r = json.loads((tmp_path / "run" / "results.json").read_text())
    assert r["vdeval_results_version"] == RESULTS_VERSION and len(r["suite_hash"]) == 64
    assert r["provenance"]["device"] == "cpu" and r["provenance"]["torch"]
    assert len(r["clips"]) == 16 and out.n_failed == 0
    row = next(s for s in r["summary"] if s["generator"] == "frozen" and s["metric"] == "frozen_motion")
    assert row["value"] == 1.0 and row["n"] == 8 and row["backbone"].startswith("dis")
    assert "dis@" in "".join(r["backbones"])
    csv = (tmp_path / "run" / "clips.csv").read_text().splitlines()
    assert csv[0].split(",")[-2:] == ["frame_difference", "frozen_motion"] and len(csv) == 17
    # the same prompt index and sample share one seed across generators: paired comparisons
    seeds = {(c["clip_id"], c["seed"]) for c in r["clips"]}
    assert len(seeds) == 8


def test_rerun_resumes_without_recomputing(tmp_path):
    suite = make_suite(tmp_path, BODY)
    Runner(suite, out=tmp_path / "run", progress=False).execute()
    stored = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.suffix in (".npy", ".safetensors")}
    assert any(p.suffix == ".safetensors" for p in stored)
    first = json.loads((tmp_path / "run" / "results.json").read_text())
    Runner(suite, out=tmp_path / "run", progress=False).execute()
    again = {p: p.stat().st_mtime_ns for p in stored}
    assert again == stored  # no clip regenerated, no feature recomputed
    second = json.loads((tmp_path / "run" / "results.json").read_text())
    assert first["summary"] == second["summary"]


def test_changed_generator_invalidates_its_stored_clips(tmp_path):
    Runner(make_suite(tmp_path, BODY), out=tmp_path / "run", progress=False).execute()
    changed = BODY.replace("severity: 1.0", "severity: 0.0")
    r = Runner(make_suite(tmp_path, changed), out=tmp_path / "run", progress=False).execute().results
    assert r.row("frozen", "frame_difference").value > 0  # no longer the frozen clips from the first run


def test_relabelling_a_step_keeps_stored_clips(tmp_path):
    Runner(make_suite(tmp_path, BODY), out=tmp_path / "run", progress=False).execute()
    stored = {p: p.stat().st_mtime_ns for p in (tmp_path / "run" / "clips").rglob("*.npy")}
    labelled = BODY.replace("{name: clean, kind: world}", "{name: clean, kind: world, step: 100}")
    r = Runner(make_suite(tmp_path, labelled), out=tmp_path / "run", progress=False).execute().results
    assert {p: p.stat().st_mtime_ns for p in stored} == stored
    assert r.generators["clean"].step == 100


def test_bad_clip_is_recorded_and_the_run_goes_on(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(3):
        write_video(sample_clip(i).video, folder / f"p{i:03d}_s0.npy")
    (folder / "p001_s0.npy").write_bytes(b"corrupt")
    suite = make_suite(tmp_path, """
    name: f
    prompts: {source: list, items: ["x", "y", "z", "w"]}
    generators:
      - {name: mine, kind: folder, path: videos}
    metrics:
      - {name: frame_difference}
    """)
    out = Runner(suite, out=tmp_path / "run", progress=False).execute()
    assert out.n_failed == 2  # the corrupt file and the missing p003
    errors = {f.clip_id: f.error for f in out.results.failures}
    assert "p001_s0.npy" in errors["p001_s0"] and "p003_s0" in errors["p003_s0"]
    row = out.results.summary[0]
    assert row.n == 2 and row.n_failed == 2 and row.value is not None


def test_limit_and_list_prompts(tmp_path):
    out = Runner(make_suite(tmp_path, BODY), out=tmp_path / "run", limit=2, progress=False).execute()
    assert out.n_clips == 2 * 2 * 2


def test_real_set_computes_only_set_level_features(tmp_path):
    # reference_fidelity needs reference images, which real clips do not have: the real set must
    # be asked only for what set-level metrics read
    suite = make_suite(tmp_path, """
    name: i
    world: {height: 24, width: 24, frames: 6}
    prompts: {source: world, count: 3}
    generators:
      - {name: clean, kind: world}
    real: {kind: world, count: 4}
    metrics:
      - {name: reference_fidelity}
      - {name: fvd, params: {n_bootstrap: 10}}
    """)
    out = Runner(suite, out=tmp_path / "run", progress=False).execute()
    rows = {s.metric: s for s in out.results.summary}
    assert rows["reference_fidelity"].value > 0.9  # the world generator continues its own first frame
    assert rows["fvd"].value is not None and rows["fvd"].n_real == 4


def test_written_files_follow_the_umask_not_mkstemp(tmp_path):
    import os
    import stat

    from vdeval.store import atomic_write_text

    umask = os.umask(0o022)
    os.umask(umask)
    p = atomic_write_text(tmp_path / "x.json", "{}")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_a_clip_whose_features_fail_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch):
    """The feature stage retries a failing batch clip by clip: only the bad clip fails, with stage
    "featurize" in failures, and the summary rests on the others."""
    from vdeval.run import featurizing

    real = featurizing.featurize

    def featurize(clips, *args, **kwargs):
        if any(c.clip_id == "p001_s1" for c in clips):
            raise RuntimeError("cannot decode frame 3")
        return real(clips, *args, **kwargs)

    monkeypatch.setattr(featurizing, "featurize", featurize)
    out = Runner(make_suite(tmp_path, BODY), out=tmp_path / "run", progress=False).execute()
    failures = [(f.generator, f.clip_id, f.stage) for f in out.results.failures]
    assert failures == [("clean", "p001_s1", "featurize"), ("frozen", "p001_s1", "featurize")]
    assert out.n_failed == 2 and "cannot decode frame 3" in out.results.failures[0].error
    row = out.results.row("clean", "frame_difference")
    assert row.n == 7 and row.n_failed == 1 and row.value is not None


def test_metrics_are_handed_the_backbones_they_read(tmp_path):
    """Explicit hooks, no attribute sniffing: FVD records the identity hash of the exact backbone
    (options and weights included) through Metric.bind_backbones."""
    suite = make_suite(tmp_path, """
    name: b
    world: {height: 24, width: 24, frames: 6}
    prompts: {source: world, count: 3}
    generators:
      - {name: clean, kind: world}
    real: {kind: world, count: 3}
    metrics:
      - {name: fvd, params: {n_bootstrap: 10}}
    """)
    runner = Runner(suite, out=tmp_path / "run", progress=False)
    out = runner.execute()
    expected = runner.pool.get("embedded").identity_hash()
    assert runner.metrics["fvd"].backbone_hash == expected
    assert out.results.row("clean", "fvd").extras["backbone_hash"] == expected
    assert out.results.backbones["embedded@1"].identity_hash == expected
