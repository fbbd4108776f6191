"""The report as a person sees it: headless Chromium at 1280 px, on a fixture report and on a report
of real footage (tests/data/report_footage). Screenshots are kept under tests/artifacts/ (git-ignored)
and their paths printed. Skipped, with the reason, where Chromium is not installed (.ci/run
installs Debian's chromium before the tests)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from helpers import STEPS, make_results, write_run

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
NATURAL = Path(__file__).resolve().parents[1] / "data" / "report_footage"

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]

# injected into a copy of the page only (the report itself has no script): records load errors,
# then writes what a person would see, measured by the browser's own layout
PROBE = """<script>
window.__errs=[];window.addEventListener('error',function(e){window.__errs.push(String(e.message||
(e.target&&e.target.src&&e.target.src.slice(0,60))||'error'))},true);
function vis(e){var s=getComputedStyle(e);return e.offsetParent!==null&&s.visibility!=='hidden'&&s.display!=='none'}
window.addEventListener('load',function(){var r={imgs:[],errs:window.__errs,scripts:document.scripts.length,
text:document.body.innerText.indexOf("<scr"+"ipt>alert('x')</scr"+"ipt>")>=0,overflow:[],overlap:0,best:[],grid:null,
pageWidth:document.documentElement.scrollWidth,innerWidth:window.innerWidth,board:null};
for(var i=0;i<document.images.length;i++){var im=document.images[i];
r.imgs.push({cls:im.className,w:im.naturalWidth,h:im.naturalHeight,done:im.complete})}
var boxes=document.querySelectorAll('figure, td, th, figcaption');
for(var i=0;i<boxes.length;i++){var b=boxes[i];if(!vis(b))continue;var br=b.getBoundingClientRect();
 var kids=b.querySelectorAll('img, span, figcaption, div');
 for(var j=0;j<kids.length;j++){var k=kids[j];if(!vis(k))continue;var kr=k.getBoundingClientRect();
  if(kr.width>0&&(kr.left<br.left-1||kr.right>br.right+1))r.overflow.push(b.tagName+'>'+k.tagName+' '+kr.width.toFixed(0)+'>'+br.width.toFixed(0)+' '+(k.textContent||k.className).slice(0,40))}}
var figs=[].slice.call(document.querySelectorAll('figure')).filter(vis).map(function(f){return f.getBoundingClientRect()});
for(var i=0;i<figs.length;i++)for(var j=i+1;j<figs.length;j++){var a=figs[i],c=figs[j];
 if(a.left<c.right-1&&c.left<a.right-1&&a.top<c.bottom-1&&c.top<a.bottom-1)r.overlap++}
var marks=document.querySelectorAll('table.summary td.best-sig .mark');
for(var i=0;i<marks.length;i++){if(vis(marks[i]))r.best.push(marks[i].textContent)}
var g=document.querySelector('table.grid');if(g&&vis(g)){r.grid={rows:g.querySelectorAll('tbody tr').length,
 cols:g.querySelectorAll('thead th').length-1,imgs:[].slice.call(g.querySelectorAll('img')).filter(vis).length}}
var views=document.querySelectorAll('#leaderboard > .view');
for(var i=0;i<views.length;i++){if(vis(views[i])){var rows=views[i].querySelectorAll('tbody tr th');
 r.board={id:views[i].id||'default',order:[].map.call(rows,function(x){return x.textContent})}}}
var p=document.createElement('pre');p.id='probe-result';p.textContent=JSON.stringify(r);document.body.appendChild(p)});
</script>"""


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = _find_chromium()
    if path is None:
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium; .ci/run does this)")
    return path


def _run(chromium: str, tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *extra, url],
                          capture_output=True, text=True, timeout=90)


def screenshot(chromium: str, tmp: Path, page: Path, name: str, height: int = 3600, fragment: str = "",
               *extra: str) -> Path:
    """A 1280 px wide screenshot kept under tests/artifacts/; the console must stay silent (a CSP
    violation, a broken data URI or an external load would be logged)."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    r = _run(chromium, tmp, page.as_uri() + fragment, f"--window-size=1280,{height}", f"--screenshot={shot}", *extra)
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    assert shot.exists() and Image.open(shot).size == (1280, height)
    print(f"screenshot: {shot}")
    return shot


def probe(chromium: str, tmp: Path, page: Path, fragment: str = "") -> dict:
    """Layout facts from a copy of the page with the probe (CSP relaxed for inline script only)."""
    probed = tmp / f"probed{abs(hash(fragment))}.html"
    probed.write_text(page.read_text().replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
                      .replace("</head>", PROBE + "</head>", 1))
    r = _run(chromium, tmp, probed.as_uri() + fragment, "--window-size=1280,900", "--virtual-time-budget=5000",
             "--dump-dom")
    m = re.search(r'<pre id="probe-result">(.*?)</pre>', r.stdout, re.S)
    assert m, r.stderr[-2000:]
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))


def _assert_layout(result: dict) -> None:
    assert result["errs"] == []
    assert result["scripts"] == 1  # only the probe
    assert all(i["done"] and i["w"] > 0 and i["h"] > 0 for i in result["imgs"]), result["imgs"]
    assert result["overflow"] == [], result["overflow"][:10]  # no element wider than its box
    assert result["overlap"] == 0  # previews never overlap each other
    assert result["pageWidth"] <= result["innerWidth"]  # nothing pushes the page sideways


@pytest.fixture(scope="module")
def fixture_report(tmp_path_factory) -> Path:
    from vdeval.report import write_report

    root = tmp_path_factory.mktemp("runs") / "nightly"
    run = write_run(root, make_results(STEPS, failed=("ckpt_2k", 4), null_score=("ckpt_4k", 2, "warping_error")))
    return write_report([run], tmp_path_factory.mktemp("report"))


def test_fixture_report_in_chromium(fixture_report, chromium, tmp_path):
    screenshot(chromium, tmp_path, fixture_report, "fixture_report.png")
    result = probe(chromium, tmp_path, fixture_report)
    _assert_layout(result)
    assert result["text"] is True  # the hostile prompt shows as text, not a script
    # the final checkpoint is significantly best on warping error and clip score; fvd too (CIs)
    assert len(result["best"]) >= 2 and all("★" in b for b in result["best"])
    assert result["grid"] == {"rows": 4, "cols": 3, "imgs": 12}
    previews = [i for i in result["imgs"] if i["cls"] == "preview"]
    assert len(previews) == 3 * 3 * 2 + 12 and all(i["h"] == 96 for i in previews)
    assert result["board"]["id"] == "default"
    assert result["board"]["order"] == ["ckpt_1k", "ckpt_2k", "ckpt_4k"]


def test_tables_sort_without_script(fixture_report, chromium, tmp_path):
    """A column header is a link to a pre-sorted copy: the page's CSP forbids every script (so for
    the page JavaScript is off) and the sort still works, since CSS :target picks the copy."""
    html = fixture_report.read_text()
    col = re.search(r'href="#(leaderboard-c\d+)" title="sort by clip_score', html).group(1)
    result = probe(chromium, tmp_path, fixture_report, "#" + col)
    assert result["board"]["id"] == col
    assert result["board"]["order"] == ["ckpt_4k", "ckpt_2k", "ckpt_1k"]  # clip_score: higher first
    assert "<script" not in html
    screenshot(chromium, tmp_path, fixture_report, "fixture_report_sorted.png", 1600, "#" + col)


@pytest.fixture(scope="module")
def natural_report(tmp_path_factory) -> Path:
    """A real run of tests/data/report_footage/suite.yaml (real footage, weightless backbones), then its report."""
    from vdeval.report import write_report
    from vdeval.run.runner import Runner
    from vdeval.suite import load_suite

    work = tmp_path_factory.mktemp("natural")
    shutil.copytree(NATURAL, work / "suite")
    outcome = Runner(load_suite(work / "suite" / "suite.yaml"), out=work / "run", progress=False).execute()
    assert outcome.n_failed == 0 and outcome.n_clips == 8
    return write_report([outcome.run_dir], work / "report")


def test_natural_footage_report_in_chromium(natural_report, chromium, tmp_path):
    html = natural_report.read_text()
    assert "the suite&#x27;s declared baseline" in html and "Baseline: <b>pristine</b>" in html
    screenshot(chromium, tmp_path, natural_report, "natural_report.png")
    result = probe(chromium, tmp_path, natural_report)
    _assert_layout(result)
    assert result["grid"] == {"rows": 2, "cols": 2, "imgs": 4}
    previews = [i for i in result["imgs"] if i["cls"] == "preview"]
    # the wide clip (256x144) is scaled to fit its 150 px box (144 px wide), keeping 16:9
    assert any(i["w"] == 144 and i["h"] == 81 for i in previews)
    assert any(i["w"] == 117 and i["h"] == 96 for i in previews)  # carphone 176x144


@pytest.mark.slow  # runs suites/smoke.yaml on 6 prompts (36 clips): about 2 minutes on 2 cores
def test_smoke_report_in_chromium(chromium, tmp_path):
    """The README's smoke suite, cut to 6 prompts (the fewest at which Wilcoxon can reach p < 0.05)."""
    from vdeval.report import write_report
    from vdeval.run.runner import Runner
    from vdeval.suite import load_suite

    root = Path(__file__).resolve().parents[2]
    outcome = Runner(load_suite(root / "suites" / "smoke.yaml"), out=tmp_path / "run", limit=6,
                     progress=False).execute()
    index = write_report([outcome.run_dir], tmp_path / "report")
    html = index.read_text()
    assert "Baseline: <b>final</b> (the last training step" in html
    screenshot(chromium, tmp_path, index, "smoke_report.png", 4200)
    result = probe(chromium, tmp_path, index)
    _assert_layout(result)
    # the frozen control has zero warping error on every clip: significantly best, marked
    assert result["best"] and all("★" in b for b in result["best"])
    assert result["grid"] == {"rows": 4, "cols": 6, "imgs": 24}
