import numpy as np
import pytest

from vdeval.audit import core as audit
from vdeval.audit.core import MemoryCache, auroc, run_audit, severity_spearman
from vdeval.audit.rendering import to_markdown, write_audit
from vdeval.backbones.embedded import WEIGHTS_DIR, WEIGHTS_FILE
from vdeval.errors import UnknownNameError, VdevalError, WeightsError
from vdeval.run.featurize import BackbonePool

has_embedded = pytest.mark.skipif(not (WEIGHTS_DIR / WEIGHTS_FILE).is_file(),
                                  reason=f"embedded weights not found at {WEIGHTS_DIR / WEIGHTS_FILE}")


def test_auroc_and_spearman():
    assert auroc([3, 4], [1, 2], higher_is_better=True) == 1.0
    assert auroc([3, 4], [1, 2], higher_is_better=False) == 0.0
    assert auroc([1, 1], [1, 1], True) == 0.5
    assert auroc([1, 2, np.nan], [1.5], True) == 0.5
    assert np.isnan(auroc([], [1.0], True))
    assert severity_spearman([0, 0.5, 1], [1, 2, 3], higher_is_better=False) == pytest.approx(1.0)
    assert severity_spearman([0, 0.5, 1], [1, 2, 3], higher_is_better=True) == pytest.approx(-1.0)
    assert np.isnan(severity_spearman([0, 0.5, 1], [1, 1, 1], True))


@pytest.fixture(scope="module")
def small_audit():
    return run_audit(
        n=12, severities=(0.5, 1.0),
        metrics=["frame_difference", "warping_error", "frozen_motion", "identity_drift", "scene_cuts"],
        corruptions=["flicker", "freeze", "identity_swap", "scene_cut", "caption_swap"],
        backbones=["identity_drift=pixels"],
    )


def _auroc(result, score, corruption, severity):
    t = result.table
    row = t[(t["score"] == score) & (t["corruption"] == corruption) & np.isclose(t["severity"], severity)]
    assert len(row) == 1
    return float(row["auroc"].iloc[0])


def test_each_metric_catches_its_own_failure(small_audit):
    r = small_audit
    assert _auroc(r, "frame_difference", "flicker", 0.5) >= 0.9
    assert _auroc(r, "warping_error", "flicker", 0.5) >= 0.9
    assert _auroc(r, "identity_drift", "identity_swap", 0.5) >= 0.9
    assert _auroc(r, "scene_cuts", "scene_cut", 0.5) >= 0.9
    # the VBench flag only sees whole-clip freezes; the frozen fraction sees half-clip ones
    assert _auroc(r, "frozen_motion.frozen_fraction", "freeze", 0.5) >= 0.9
    assert _auroc(r, "frozen_motion", "freeze", 1.0) >= 0.9
    assert _auroc(r, "frozen_motion", "freeze", 0.5) < 0.7
    # a text-side corruption leaves every video metric blind, as it should
    assert _auroc(r, "warping_error", "caption_swap", 0.5) == 0.5
    own = r.own_failure(0.5)
    assert set(own["score"]) >= {"frame_difference", "warping_error", "identity_drift", "scene_cuts"}


def test_flow_computed_once_per_distinct_video(small_audit):
    # 12 clean + 12 x 4 video corruptions x 2 severities; caption_swap reuses the clean videos
    assert small_audit.computed["flow[dis]"] == 12 + 12 * 4 * 2
    assert small_audit.computed["frame_embedding[pixels]"] == 12 + 12 * 4 * 2


def test_outputs(small_audit, tmp_path):
    paths = write_audit(small_audit, tmp_path / "out")
    for p in paths.values():
        assert p.is_file() and p.stat().st_size > 0
    md = to_markdown(small_audit)
    assert "| warping_error [dis] |" in md and "1.00*" in md
    import pandas as pd

    t = pd.read_csv(paths["csv"])
    assert {"score", "corruption", "severity", "auroc", "spearman"} <= set(t.columns)


class _NoEmbedded(BackbonePool):
    def get(self, name, options=()):
        if name == "embedded":
            raise WeightsError("embedded backbone: embedded.safetensors not found")
        return super().get(name, options)


def test_missing_backbone_is_skipped_with_a_note(monkeypatch):
    # only metrics the user did not name are skipped: here the defaults
    monkeypatch.setattr(audit, "default_metrics", lambda: ["clip_score", "frame_difference"])
    r = run_audit(n=3, severities=(0.5,), corruptions=["flicker"], pool=_NoEmbedded(), cache=MemoryCache())
    assert len(r.skipped) == 1 and r.skipped[0].startswith("clip_score [embedded]: skipped")
    assert "\n" not in r.skipped[0]
    assert set(r.table["score"]) == {"frame_difference"}


def test_every_metric_skipped_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(audit, "default_metrics", lambda: ["clip_score"])
    with pytest.raises(VdevalError, match="no metric can be audited: clip_score"):
        run_audit(n=3, severities=(0.5,), corruptions=["flicker"], pool=_NoEmbedded())


@pytest.mark.parametrize("kw", [{"metrics": ["clip_score", "frame_difference"]},
                                {"backbones": ["clip_score=embedded"]}])
def test_a_metric_asked_for_is_never_skipped(kw, monkeypatch):
    # issue 15: `--backbone identity_drift=clip` without clip weights exited 0, the metric skipped
    monkeypatch.setattr(audit, "default_metrics", lambda: ["clip_score", "frame_difference"])
    with pytest.raises(VdevalError, match=r"clip_score \[embedded\] cannot be audited: backbone unavailable"):
        run_audit(n=3, severities=(0.5,), corruptions=["flicker"], pool=_NoEmbedded(), cache=MemoryCache(), **kw)


def test_bad_arguments():
    with pytest.raises(UnknownNameError):
        run_audit(n=3, metrics=["warp_error"])
    with pytest.raises(VdevalError, match="did you mean 'flicker'"):
        run_audit(n=3, metrics=["frame_difference"], corruptions=["flickr"])
    with pytest.raises(VdevalError):
        run_audit(n=3, severities=(0.0,))
    with pytest.raises(VdevalError):
        run_audit(n=1)
    with pytest.raises(VdevalError):
        run_audit(n=3, metrics=["frozen_motion"], backbones=["frozen_motion=pixels"])


def test_cli(tmp_path, capsys):
    from vdeval.cli import main

    main(["audit", "--n", "3", "--metrics", "frame_difference,scene_cuts", "--corruptions", "flicker,scene_cut",
          "--severities", "0.5", "--out", str(tmp_path / "a")])
    assert "| scene_cuts [pixels] |" in capsys.readouterr().out
    assert (tmp_path / "a" / "audit.png").is_file() and (tmp_path / "a" / "audit.md").is_file()
    with pytest.raises(SystemExit) as e:
        main(["audit", "--n", "3", "--severities", "half", "--out", str(tmp_path / "b")])
    assert e.value.code == 2


@has_embedded
def test_embedded_metrics_catch_their_failures():
    r = run_audit(n=16, severities=(0.5,),
                  metrics=["identity_drift", "reference_fidelity", "clip_score", "video_text_alignment", "prompt_drift"],
                  corruptions=["identity_swap", "caption_swap", "scene_cut"])
    assert not r.skipped
    assert _auroc(r, "identity_drift", "identity_swap", 0.5) >= 0.9
    assert _auroc(r, "reference_fidelity", "identity_swap", 0.5) >= 0.9
    assert _auroc(r, "clip_score", "caption_swap", 0.5) >= 0.9
    assert _auroc(r, "video_text_alignment", "caption_swap", 0.5) >= 0.9


def test_clips_a_corruption_leaves_unchanged_are_not_counted_as_missed():
    """texture_swim changes no pixel of a plain background: those clips have no failure to catch."""
    r = run_audit(n=16, metrics=["world_background_consistency"], corruptions=["texture_swim"], severities=[0.5])
    row = r.table[r.table["corruption"] == "texture_swim"].iloc[0]
    assert row["n_unchanged"] > 0 and row["n_corrupted"] == 16 - row["n_unchanged"]
    assert row["auroc"] >= 0.9


def test_a_clip_that_raises_is_recorded_and_the_audit_goes_on(monkeypatch):
    """One bad clip never ends the audit (issue 12): a corruption that raises on one clip leaves that
    clip out, a metric that raises on one clip scores NaN there with the error as its note."""
    from vdeval.metrics.frame_difference import FrameDifference
    from vdeval.world import corruptions

    real_freeze, real_score = corruptions.CORRUPTIONS["freeze"], FrameDifference.score_clip

    def freeze(clip, severity, seed):
        if seed == 2:
            raise RuntimeError("decoder exploded\nsecond line")
        return real_freeze(clip, severity, seed)

    def score(self, clip):
        if clip.clip_id == "1/flicker@0.5":
            raise ValueError("no frames for this one")
        return real_score(self, clip)

    monkeypatch.setitem(corruptions.CORRUPTIONS, "freeze", freeze)
    monkeypatch.setattr(FrameDifference, "score_clip", score)
    r = run_audit(n=4, severities=(0.5,), metrics=["frame_difference"], corruptions=["flicker", "freeze"])
    assert r.failures == ["2/freeze@0.5: corruption: RuntimeError: decoder exploded"]
    s = r.scores
    bad = s[(s["clip"] == 1) & (s["corruption"] == "flicker")]
    assert len(bad) == 1 and np.isnan(bad["value"].iloc[0]) and "ValueError: no frames" in bad["note"].iloc[0]
    row = lambda c: r.table[r.table["corruption"] == c].iloc[0]  # noqa: E731
    assert row("flicker")["n_corrupted"] == 3 and row("freeze")["n_corrupted"] == 3 and row("flicker")["n_clean"] == 4
    assert row("flicker")["auroc"] == 1.0  # the other clips still tell flicker apart
    assert "2/freeze@0.5: corruption" in to_markdown(r)


def test_a_feature_pass_that_raises_on_one_clip_leaves_only_that_clip_out(monkeypatch):
    from vdeval.run import featurizing

    real = featurizing.featurize

    def featurize(clips, *args, **kwargs):  # a file that stops decoding, a backbone failing on one input
        if any(c.clip_id == "1/flicker@0.5" for c in clips):
            raise RuntimeError("cannot decode frame 3")
        return real(clips, *args, **kwargs)

    monkeypatch.setattr(featurizing, "featurize", featurize)
    r = run_audit(n=3, severities=(0.5,), metrics=["frame_difference"], corruptions=["flicker"])
    assert r.failures == ["1/flicker@0.5: features: RuntimeError: cannot decode frame 3"]
    row = r.table.iloc[0]
    assert row["n_corrupted"] == 2 and row["n_clean"] == 3 and row["auroc"] == 1.0
