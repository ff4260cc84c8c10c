"""The documentation site, tested as a reader would meet it.

- ``mkdocs build --strict`` builds it (the demos draw the figures at their tiny size);
- every ``python`` block of every Learn page runs, in order, one namespace per page;
- headless Chromium (the system's, through Playwright) opens each built Learn page, checks that
  the page exists, that every image on it loaded and that its demo's figure is there, and saves
  a screenshot of each.

Skipped, with the reason, where mkdocs (the ``docs`` extra) or Chromium are not installed.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason='the docs extra is not installed (pip install -e ".[docs]")')
pytest.importorskip("material", reason="mkdocs-material is not installed (the docs extra)")
pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] is not installed")
pytest.importorskip("matplotlib", reason="the demos draw with matplotlib (the plot extra)")

ROOT = Path(__file__).resolve().parents[1]
LEARN = ROOT / "docs" / "learn"
sys.path.insert(0, str(ROOT / "tools"))
from docs_hooks import DEMOS  # noqa: E402

PAGES = sorted(LEARN.glob("[0-9][0-9]-*.md"))
# The placeholder the hook draws for a demo missing from the package (6 x 2 inches at 80 dpi).
PLACEHOLDER_SIZE = (480, 160)


def _page_demo(page: Path) -> str:
    return page.stem[3:]  # "03-gradient-descent" -> "gradient-descent"


def test_one_learn_page_per_demo_in_order():
    assert [_page_demo(p) for p in PAGES] == DEMOS
    for page in PAGES:
        assert f"](img/{_page_demo(page)}.png)" in page.read_text(), page.name


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built strictly with the demos at their tiny size."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, TINYGRAD_EDU_DOCS_TINY="1", NO_MKDOCS_2_WARNING="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_build_strict_has_every_page_and_figure(site: Path):
    for page in PAGES:
        html = site / "learn" / page.stem / "index.html"
        assert html.is_file(), f"missing page {html}"
        name = _page_demo(page)
        assert re.search(rf'<img[^>]+src="\.\./img/{re.escape(name)}\.png"', html.read_text()), name
        png = site / "learn" / "img" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    for ref in ("tensor", "nn", "optim", "data", "autograd", "gradcheck", "viz", "study"):
        html = (site / "reference" / ref / "index.html").read_text()
        assert 'class="doc doc-object' in html, f"API reference {ref} has no objects"
    for guide in ("architecture", "autograd", "training", "optimizers", "benchmarks"):
        assert (site / guide / "index.html").is_file(), guide


def _code_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_learn_page_code_runs(page: Path, tmp_path, monkeypatch, capsys):
    blocks = _code_blocks(page)
    assert blocks, f"{page.name} has no python block"
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    namespace: dict = {"__name__": "__main__"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
    assert capsys.readouterr().out.strip(), f"{page.name}: its code printed nothing"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium on PATH (apt-get install chromium); browser test skipped")
    return path


@pytest.fixture(scope="module")
def served(site: Path):
    """The built site on a local HTTP server (directory URLs need one); yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # the test's output is the report, not the log
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_browser_renders_learn_pages(served: str, tmp_path):
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from tinygrad_edu import demos

    present = {name for name, _ in demos.available()}
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        # Only the local site: an offline machine must not wait on a CDN (MathJax).
        page.route(
            "**/*",
            lambda route: (
                route.continue_() if route.request.url.startswith(served) else route.abort()
            ),
        )
        # Every Learn page linked from the Learn index exists.
        response = page.goto(served + "learn/", wait_until="load")
        assert response is not None and response.status == 200
        links = page.eval_on_selector_all(
            "article a[href]", "els => els.map(e => e.getAttribute('href'))"
        )
        linked = sorted({href.split("#")[0] for href in links if href[:2].isdigit()})
        assert linked == [f"{p.stem}/" for p in PAGES]
        for learn_page in PAGES:
            name = _page_demo(learn_page)
            response = page.goto(f"{served}learn/{learn_page.stem}/", wait_until="load")
            assert response is not None and response.status == 200, learn_page.stem
            images = page.eval_on_selector_all(
                "article img",
                "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth,"
                " e.naturalHeight])",
            )
            assert images, f"{learn_page.stem}: no image"
            broken = [src for src, complete, width, _ in images if not complete or width == 0]
            assert not broken, f"{learn_page.stem}: broken images {broken}"
            figure = [im for im in images if im[0].endswith(f"img/{name}.png")]
            assert figure, f"{learn_page.stem}: the {name} figure is not on the page"
            if name in present:  # the demo's own figure, not the hook's placeholder
                assert tuple(figure[0][2:]) != PLACEHOLDER_SIZE, name
            page.screenshot(path=str(shots / f"{learn_page.stem}.png"), full_page=True)
        browser.close()
    print(f"\nscreenshots of the Learn pages: {shots}")
    assert len(list(shots.glob("*.png"))) == len(PAGES)
