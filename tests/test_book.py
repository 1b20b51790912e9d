"""The course website in a real headless browser (Chromium from Debian's packages, via Playwright).

Builds the site as ``make book`` does, from the lessons' stored outputs (the reference run: nothing
is trained or executed) — or, with
``KDTUTOR_BOOK_HTML=<folder>``, checks a site already built by ``make book`` — serves it on
localhost, opens every page and fails on: a missing or broken image, math left unrendered or
rendered as an error, a console error or uncaught exception, a failed request, or any request
leaving localhost (the site must work offline). Full-page screenshots go to
``$KDTUTOR_TEST_ARTEFACTS`` (default ``results/test-artefacts/``)``/site/``.
"""

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTEFACTS = Path(os.environ.get("KDTUTOR_TEST_ARTEFACTS", ROOT / "results" / "test-artefacts")) / "site"
CHROMIUM = os.environ.get("KDTUTOR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
SKIP_PAGES = {"genindex.html", "search.html"}  # Sphinx's own index and search pages

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt-get install chromium); "
                                                "the website's browser test needs it"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("playwright", reason="pip install -e '.[book]' for the browser test")
    pytest.importorskip("myst_nb", reason="pip install -e '.[book]' to build the website")
    given = os.environ.get("KDTUTOR_BOOK_HTML")
    if given:
        return Path(given)
    from coursetools import book

    tmp = tmp_path_factory.mktemp("book")
    return book.build(out=tmp / "book")  # from the lessons' stored outputs, as make book: nothing runs


def _pages(site: Path) -> list[str]:
    """The site's pages, relative to it: the lessons, the summary, and the reference pages in ``docs/``."""
    pages = [p for p in [*site.glob("*.html"), *site.glob("docs/*.html")] if p.name not in SKIP_PAGES]
    return sorted(p.relative_to(site).as_posix() for p in pages)


PAGE_STATE = """() => {
  const imgs = [...document.querySelectorAll('img')];
  const figures = imgs.filter(i => (i.getAttribute('src') || '').includes('_images/')).length;
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'));
  const math = [...document.querySelectorAll('.math')];
  const unrendered = math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60));
  const errors = [...document.querySelectorAll('mjx-merror')].map(m => m.textContent.slice(0, 60));
  const main = document.querySelector('main') || document.body;
  const clone = main.cloneNode(true);
  clone.querySelectorAll('pre, code, .math, mjx-container, script').forEach(n => n.remove());
  const text = clone.innerText;
  const rawDollars = (text.match(/\\$\\$|\\\\\\(|\\\\\\[|\\\\frac|\\\\mathrm/g) || []).length;
  return {n_images: imgs.length, figures, broken, n_math: math.length, unrendered, errors, rawDollars,
          title: document.title};
}"""


def _serve(folder: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def _local_only(host: str, trouble: list, route, request=None) -> None:
    """Let requests to the local server through; abort (and report) any other."""
    url = route.request.url
    if urlparse(url).netloc == host or url.startswith("data:"):
        route.continue_()
    else:
        trouble.append(f"request leaves localhost: {url}")
        route.abort()


def check_site(folder: Path, pages: list[str], screenshots: Path) -> tuple[list[str], dict]:
    """Open ``pages`` of the site in ``folder`` in headless Chromium; return (problems, what each page holds)."""
    from playwright.sync_api import sync_playwright

    screenshots.mkdir(parents=True, exist_ok=True)
    httpd, server = _serve(folder)
    host = urlparse(server).netloc
    problems, seen = [], {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            for name in pages:
                trouble = []
                page = context.new_page()

                page.route("**/*", functools.partial(_local_only, host, trouble))
                page.on("console", lambda m, t=trouble: t.append(f"console {m.type}: {m.text}")
                        if m.type == "error" else None)
                page.on("pageerror", lambda e, t=trouble: t.append(f"uncaught: {e}"))
                page.on("response", lambda r, t=trouble: t.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
                page.goto(f"{server}/{name}", wait_until="load")
                page.evaluate("() => window.MathJax && window.MathJax.startup ? window.MathJax.startup.promise : null")
                state = page.evaluate(PAGE_STATE)
                seen[name] = state
                trouble += [f"broken image: {s}" for s in state["broken"]]
                trouble += [f"math not rendered: {m!r}" for m in state["unrendered"]]
                trouble += [f"math error: {m!r}" for m in state["errors"]]
                if state["rawDollars"]:
                    trouble.append(f"{state['rawDollars']} raw TeX fragment(s) in the page text")
                page.screenshot(path=str(screenshots / f"{Path(name).stem}.png"), full_page=True)
                problems += [f"{name}: {t}" for t in trouble]
                page.close()
            browser.close()
    finally:
        httpd.shutdown()
    return problems, seen


def test_every_page_renders_offline_with_its_images_and_math_and_no_console_error(site):
    pages = _pages(site)
    assert "index.html" in pages and any(p.startswith("01_") for p in pages), pages
    problems, seen = check_site(site, pages, ARTEFACTS)
    assert not problems, "\n".join(problems)
    lessons = [n for n in pages if n[:2].isdigit()]
    assert sum(seen[n]["figures"] for n in lessons) > 0, "no lesson figure was found"  # the check saw figures
    assert sum(seen[n]["n_math"] for n in lessons) > 0  # the lessons' formulas were found and typeset
    for n in lessons:
        if n[:2] in {"03", "04", "05", "06", "07"}:
            assert seen[n]["figures"] >= 3, f"{n} shows {seen[n]['figures']} figures"
    assert "summary.html" in pages
    from coursetools.book import DOCS_PAGES

    assert {f"docs/{name}.html" for name in DOCS_PAGES} <= set(pages), pages  # the README's reference pages
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "reference run" in index and "JPEG copy of CIFAR-10" in index
    (ARTEFACTS / "pages.txt").write_text("".join(f"{n}\t{seen[n]['title']}\t{seen[n]['figures']} figures\t"
                                                 f"{seen[n]['n_math']} formulas\n" for n in pages))


def test_the_browser_check_fails_on_a_missing_figure_broken_math_and_a_cdn_script(site, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    page = next(p for p in _pages(broken) if p[:2].isdigit() and "_images/" in (broken / p).read_text(encoding="utf-8"))
    html = (broken / page).read_text(encoding="utf-8")
    figure = re.search(r'src="(_images/[^"]+)"', html).group(1)
    (broken / figure).unlink()
    html = html.replace("</head>", '<script src="https://cdn.example.org/x.js"></script></head>', 1)
    html = re.sub(r'(<span class="math notranslate nohighlight">)\\\(.*?\\\)', r"\1$x^{2$", html, count=1)
    (broken / page).write_text(html, encoding="utf-8")
    problems, _ = check_site(broken, [page], tmp_path / "shots")
    text = "\n".join(problems)
    assert f"broken image: {figure}" in text
    assert "request leaves localhost: https://cdn.example.org/x.js" in text
    assert "math not rendered" in text
