"""Two CPU ranks on gloo give the same results as one process."""
import json
import os
import subprocess
import sys
import textwrap


SUITE = """
name: dist
world: {height: 24, width: 24, frames: 6}
prompts: {source: world, count: 5}
generators:
  - {name: clean, kind: world}
  - {name: flick, kind: world, corruption: {name: flicker, severity: 0.5}}
metrics:
  - {name: frame_difference}
  - {name: frozen_motion, backbone: dis}
"""


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def torchrun(*args, cwd):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=240)


def test_two_ranks_equal_one_process(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE)
    one = subprocess.run([sys.executable, "-m", "vdeval", "run", str(suite), "--out", str(tmp_path / "one"),
                          "--no-report", "--no-progress"], env=_env(), capture_output=True, text=True, timeout=240)
    assert one.returncode == 0, one.stderr
    two = torchrun("-m", "vdeval", "run", str(suite), "--out", str(tmp_path / "two"), "--no-report", "--no-progress",
                   cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-2000:]
    a = json.loads((tmp_path / "one" / "results.json").read_text())
    b = json.loads((tmp_path / "two" / "results.json").read_text())
    assert b["provenance"]["world_size"] == 2
    assert [(c["clip_id"], c["scores"]) for c in a["clips"]] == [(c["clip_id"], c["scores"]) for c in b["clips"]]
    assert a["summary"] == b["summary"]
    # rank 0 alone prints the summary (pivoted: one row per metric, generators as columns)
    assert two.stdout.count("vdeval summary") == 1 and two.stdout.count("frame_difference") == 1


def test_ranks_with_different_suites_are_refused(tmp_path):
    script = tmp_path / "mismatch.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        from vdeval.run import distributed
        from vdeval.errors import VdevalError
        from vdeval.run.runner import Runner
        from vdeval.suite import load_suite
        ranks = distributed.from_environment()
        distributed.init(ranks, "cpu")
        path = os.path.join({str(tmp_path)!r}, f"s{{ranks.rank}}.yaml")
        try:
            Runner(load_suite(path), out={str(tmp_path / 'run')!r}, progress=False, ranks=ranks).execute()
        except VdevalError as e:
            print("REFUSED", e)
            sys.exit(2)
    """))
    (tmp_path / "s0.yaml").write_text(SUITE)
    (tmp_path / "s1.yaml").write_text(SUITE.replace("count: 5", "count: 6"))
    r = torchrun(str(script), cwd=tmp_path)
    assert r.returncode != 0
    assert r.stdout.count("REFUSED") == 2 and "ranks disagree on the suite" in r.stdout
    assert not (tmp_path / "run" / "results.json").exists()


def test_each_rank_puts_its_backbones_on_its_own_gpu(tmp_path):
    """The per-rank device reaches the backbone pool (it used to be computed and then unused)."""
    from vdeval.run import distributed
    from vdeval.run.runner import Runner
    from vdeval.suite import load_suite

    p = tmp_path / "s.yaml"
    p.write_text("name: d\nprompts: {source: world, count: 1}\ngenerators: [{name: w, kind: world}]\n"
                 "metrics: [{name: frame_difference}]\n")
    ranks = distributed.Ranks(rank=1, world_size=2, local_rank=1)
    r = Runner(load_suite(p), out=tmp_path / "run", device="cuda", ranks=ranks, progress=False)
    assert r.device == "cuda:1" and r.pool.device == "cuda:1"
