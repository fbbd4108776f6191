"""A small seeded fuzzer over the shipped suites (issue 15): random mutations of their text and of
their data; every outcome of `validate` (and of `run --limit 1` on a few cheap ones) is exit 0, 2
or 3 with one clear line, never a traceback and never "unexpected ...".

`python tests/test_suite_fuzz.py N SEED` runs N validate mutations outside pytest, for longer hunts.
"""
from __future__ import annotations

import copy
import random
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import cli_exit_code  # noqa: E402

SUITES = Path(__file__).resolve().parents[1] / "suites"
HOSTILE = [-1, 0, 1, 7, 10**12, -(10**12), 2**70, 1e308, 0.5, -0.5, float("nan"), float("inf"), "", ".", "..",
           "../../x", "a/b", "\x00", "=cmd|' /C calc'!A0", "x" * 300, None, True, False, [], {}, [1, "a"],
           {"a": 1}, {"name": "x"}, "shipped:nope", "frame_diference", "world", "folder", "reference", "dis",
           "clip", "fvd", "  ", "\t", "p000_s0", "nan", "1e9", "-5"]
YAML_NOISE = list("&*!|>{}[]:,#%@`'\"\\-?") + ["\t", "\n", " ", "\x00", "\ufeff", "é"]


def _paths(node, prefix=()):
    """Every (path, value) inside a parsed suite, containers included."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _mutate_data(data: dict, rng: random.Random) -> str:
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        path, value = rng.choice(list(_paths(data))[1:] or [((), data)])
        parent = data
        for p in path[:-1]:
            parent = parent[p]
        op = rng.choice(["replace", "replace", "replace", "delete", "unknown", "wrap", "dup"])
        if not path:
            break
        key = path[-1]
        if op == "replace":
            parent[key] = copy.deepcopy(rng.choice(HOSTILE))
        elif op == "delete":
            del parent[key]
        elif op == "unknown" and isinstance(value, dict):
            value[rng.choice(["nmae", "seed", "kind", "include", "x", "backbone"])] = rng.choice(HOSTILE)
        elif op == "wrap":
            parent[key] = rng.choice([[value], {"value": value}])
        elif op == "dup" and isinstance(parent, list):
            parent.append(copy.deepcopy(value))
    return yaml.safe_dump(data, allow_unicode=True)


def _mutate_text(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["delete", "dup", "swap", "char", "truncate", "indent"])
        if not lines:
            break
        i = rng.randrange(len(lines))
        if op == "delete":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "char":
            pos = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:pos] + rng.choice(YAML_NOISE) + lines[i][pos:]
        elif op == "truncate":
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        else:
            lines[i] = "  " + lines[i]
    return "".join(lines)


def mutations(n: int, seed: int):
    """n mutated suite texts, half by text edits and half by data edits, from every shipped suite."""
    rng = random.Random(seed)
    sources = sorted(SUITES.glob("*.yaml"))
    texts = {p.name: p.read_text() for p in sources}
    for i in range(n):
        name = sources[i % len(sources)].name
        text = texts[name]
        if i % 2:
            data = yaml.safe_load(text)
            yield name, _mutate_data(data, rng) if isinstance(data, dict) else text
        else:
            yield name, _mutate_text(text, rng)


def _assert_clean(code: int, err: str, what: str) -> None:
    assert code in (0, 2, 3), f"{what}: exit {code}\n{err}"
    assert "Traceback" not in err and "error: unexpected" not in err, f"{what}:\n{err}"


def test_validate_survives_mutated_suites(tmp_path, capsys):
    outcomes = {0: 0, 2: 0, 3: 0}
    for i, (name, text) in enumerate(mutations(60, seed=15)):
        p = tmp_path / f"m{i:03d}_{name}"
        p.write_text(text, encoding="utf-8", errors="surrogatepass")
        code = cli_exit_code(["validate", str(p)])
        err = capsys.readouterr().err
        _assert_clean(code, err, f"{p.name}\n--- suite ---\n{text}")
        outcomes[code] += 1
    assert outcomes[2] > 15 and outcomes[0] > 3, outcomes  # the fuzzer reaches both sides of validation


CHEAP = """\
name: cheap
world: {height: 16, width: 16, frames: 4, max_objects: 1, backgrounds: [plain]}
prompts: {source: world, count: 2, seed: 5000}
seed: 0
generators:
  - {name: world, kind: world}
  - {name: flicker, kind: world, corruption: {name: flicker, severity: 0.5}}
metrics:
  - {name: frame_difference}
output: {dir: out}
checks:
  - {metric: frame_difference, generator: world, max: 100}
"""


PLAUSIBLE = [0, 1, 2, 3, -1, 0.5, 8, 100, 10**6, True, "x"]


def _mutate_leaf(data: dict, rng: random.Random) -> str:
    """One number replaced by another, plausible or not: many of these mutations still run."""
    data = copy.deepcopy(data)
    path, _ = rng.choice([(p, v) for p, v in _paths(data) if isinstance(v, (int, float)) and not isinstance(v, bool)])
    parent = data
    for p in path[:-1]:
        parent = parent[p]
    parent[path[-1]] = rng.choice(PLAUSIBLE)
    return yaml.safe_dump(data)


def test_run_survives_a_few_mutated_cheap_suites(tmp_path, capsys):
    rng = random.Random(150)
    base = yaml.safe_load(CHEAP)
    codes = []
    for i in range(4):
        text = _mutate_leaf(base, rng)
        p = tmp_path / f"r{i}.yaml"
        p.write_text(text)
        code = cli_exit_code(["run", str(p), "--limit", "1", "--no-report", "--no-progress",
                              "--out", str(tmp_path / f"run{i}")])
        err = capsys.readouterr().err
        _assert_clean(code, err, f"run {p.name}\n--- suite ---\n{text}")
        codes.append((code, err.strip()[-200:]))
    n_ok, n_refused = sum(c == 0 for c, _ in codes), sum(c == 2 for c, _ in codes)
    assert n_ok >= 1 and n_refused >= 1, codes  # some ran, some were refused


if __name__ == "__main__":  # a longer hunt: python tests/test_suite_fuzz.py 2000 7
    import io
    import tempfile
    from contextlib import redirect_stderr

    n, seed = (int(a) for a in (sys.argv[1:3] + ["500", "0"][len(sys.argv[1:3]):]))
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        for i, (name, text) in enumerate(mutations(n, seed)):
            p = Path(d) / f"m{i:05d}_{name}"
            p.write_text(text, encoding="utf-8", errors="surrogatepass")
            buf = io.StringIO()
            with redirect_stderr(buf):
                code = cli_exit_code(["validate", str(p)])
            if code not in (0, 2, 3) or "Traceback" in buf.getvalue() or "error: unexpected" in buf.getvalue():
                bad += 1
                print(f"=== {p.name} exit {code}\n{text}\n--- stderr ---\n{buf.getvalue()}")
    print(f"{n} mutations, {bad} bad")
