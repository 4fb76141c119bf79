"""`snakemake --report` for config/smoke.yaml, opened in headless Chromium.

The report is a React page whose listings exist only after its JavaScript has run, so the checks
look at what Chromium renders: a screenshot of the page as opened (not blank), and the DOM after
a small probe script has clicked through every result category as a reader would (every figure of
the study is listed, and each one opens as a decoded image).
"""
import json
import shutil
import subprocess

import numpy as np
import pytest

from conftest import require, run_snakemake

pytestmark = pytest.mark.integration

FIGURE_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg"}
WINDOW = (1400, 1000)
# Virtual time lets timers (React's rendering, the probe's waits) run without waiting in real time.
VIRTUAL_TIME_MS = 30_000
CHROMIUM_TIMEOUT_S = 180
PROBE_ID = "nnprune-probe"

# Appended to a copy of the report. It clicks each category in the menu, reads the rendered
# listing, opens every image entry with its view button, and writes what it saw as JSON into
# <pre id="nnprune-probe">. It only uses the page's own links, plus the report's `categories`
# object to know which menu entries to click.
PROBE_JS = """
(function () {
  const out = {done: false, menu: [], listings: {}, images: {}, errors: []};
  window.addEventListener("error", (event) => out.errors.push(String(event.message)));
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  async function until(test, ms = 5000) {
    for (let waited = 0; waited <= ms; waited += 50) {
      const value = test();
      if (value) return value;
      await sleep(50);
    }
    return null;
  }
  const navLinks = () => Array.from(document.querySelectorAll("#app nav a"));
  const link = (text) => navLinks().find((a) => a.textContent.trim() === text);
  const contentImage = () =>
    Array.from(document.querySelectorAll("#app img")).find((img) => !img.closest("nav"));

  async function readTable(where) {
    const rows = await until(() => {
      const found = document.querySelectorAll("#app nav table tbody tr");
      return found.length ? Array.from(found) : null;
    });
    if (!rows) { out.errors.push("no results table for " + where); return; }
    const entryPath = (row) => row.querySelector("td").innerText.trim();   // first column
    out.listings[where] = rows.map(entryPath);
    for (const row of rows) {
      const label = entryPath(row);
      if (!/\\.(png|svg|jpe?g)$/i.test(label)) continue;
      const before = contentImage();
      const previous = before ? before.src : null;
      row.querySelector("td:last-child a").click();   // the entry's view button
      const img = await until(() => {
        const candidate = contentImage();
        return candidate && candidate.src !== previous && candidate.complete
          && candidate.naturalWidth > 0 ? candidate : null;
      }, 3000) || contentImage();
      out.images[label] = img ? {src: img.src.slice(0, 30), src_length: img.src.length,
                                 width: img.naturalWidth, height: img.naturalHeight} : null;
    }
  }

  async function run() {
    if (!await until(() => link("Workflow"), 20000)) throw new Error("the menu never rendered");
    out.menu = navLinks().map((a) => a.textContent.trim()).filter(Boolean);
    for (const category of Object.keys(categories)) {
      const entry = await until(() => link(category));
      if (!entry) { out.errors.push("no menu entry for category " + category); continue; }
      entry.click();
      const subcategories = Object.keys(categories[category]);
      if (subcategories.length === 1) {
        await readTable(category);
      } else {
        for (const sub of subcategories) {
          const subEntry = await until(() => link(sub));
          if (!subEntry) { out.errors.push("no entry for " + category + "/" + sub); continue; }
          subEntry.click();
          await readTable(category + "/" + sub);
          const up = await until(() => link(category));
          if (up) up.click();
        }
      }
      const back = await until(() => link("Results"));   // breadcrumb back to the menu
      if (back) back.click();
      await until(() => link("Workflow"));
    }
    out.done = true;
  }

  run().catch((err) => out.errors.push(String(err))).finally(() => {
    const pre = document.createElement("pre");
    pre.id = "@PROBE_ID@";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  });
})();
""".replace("@PROBE_ID@", PROBE_ID)


def chromium_binary():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium():
    path = chromium_binary()
    require(path is not None, "chromium is not on PATH; on Debian: apt-get install chromium")
    return path


def run_chromium(chromium, url, tmp_path, *args):
    """Headless Chromium on `url`; returns the finished process (stdout: --dump-dom output)."""
    profile = tmp_path / "chromium-profile"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
           f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--virtual-time-budget={VIRTUAL_TIME_MS}",
           *args, url]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def read_png(png):
    """A screenshot as an (H, W, 3) uint8 array."""
    from PIL import Image

    assert png.is_file(), f"chromium wrote no screenshot to {png}"
    with Image.open(png) as image:
        return np.asarray(image.convert("RGB"))


def screenshot(chromium, html, tmp_path):
    """Screenshot of `html` as opened."""
    png = tmp_path / f"{html.stem}.png"
    run_chromium(chromium, html.as_uri(), tmp_path, f"--screenshot={png}")
    return read_png(png)


def blank_page_problems(pixels):
    """Why a screenshot looks blank, or [] when it does not.

    Blank: almost every pixel has the most common colour, or the page has only a few colours
    (a white page, or the report's bare "Loading Snakemake Report..." line: grey text on white
    gives 16 colours at 16 levels per channel, whatever its length).

    The share of non-background pixels is kept low on purpose. The rendered report has 17% when
    its stylesheet has been applied (a grey menu panel) but 1.4% when Chromium's screenshot comes
    before the stylesheet, as it did on a loaded CI machine: menu, icons and workflow graph are all
    there (150 colours), on white. The colour count is what tells a rendered page from text."""
    flat = pixels.reshape(-1, 3)
    colours, counts = np.unique(flat // 16, axis=0, return_counts=True)   # 16 levels per channel
    other = 1.0 - counts.max() / len(flat)
    problems = []
    if other < 0.005:
        problems.append(f"only {other:.1%} of the pixels differ from the background colour")
    if len(colours) < 24:
        problems.append(f"only {len(colours)} distinct colours")
    return problems


def probe(chromium, html, tmp_path):
    """Run PROBE_JS in a copy of the report: (what it recorded, screenshot of its last view).

    The probe ends with the last image it opened on screen, so the screenshot shows a figure."""
    page = html.read_text(encoding="utf-8")
    marker = page.rfind("</body>")
    assert marker >= 0, "the report has no </body>"
    probed = tmp_path / "probed.html"
    probed.write_text(page[:marker] + f"<script>{PROBE_JS}</script>\n" + page[marker:],
                      encoding="utf-8")
    shot = tmp_path / "probed.png"
    dom = run_chromium(chromium, probed.as_uri(), tmp_path, "--dump-dom",
                       f"--screenshot={shot}").stdout
    from html.parser import HTMLParser

    class Probe(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside, self.text = False, []

        def handle_starttag(self, tag, attrs):
            self.inside = self.inside or (tag == "pre" and ("id", PROBE_ID) in attrs)

        def handle_endtag(self, tag):
            self.inside = self.inside and tag != "pre"

        def handle_data(self, data):
            if self.inside:
                self.text.append(data)

    parser = Probe()
    parser.feed(dom)
    assert parser.text, f"the probe wrote nothing within {VIRTUAL_TIME_MS} ms of virtual time"
    return json.loads("".join(parser.text)), read_png(shot)


def report_figures(workdir):
    """Every figure the smoke study wrote: the image files under results/ (paths as listed)."""
    return sorted(path.relative_to(workdir).as_posix()
                  for path in (workdir / "results").rglob("*")
                  if path.suffix.lower() in FIGURE_SUFFIXES and path.is_file())


@pytest.fixture(scope="module")
def report_html(smoke_local, snakemake_bin, fashion_root, tmp_path_factory):
    workdir, _ = smoke_local
    html = tmp_path_factory.mktemp("report") / "report.html"
    result = run_snakemake(snakemake_bin, workdir, fashion_root, "--report", str(html))
    assert result.returncode == 0, result.stderr[-4000:]
    assert html.is_file() and html.stat().st_size > 0
    return html


def test_blank_page_is_detected(chromium, tmp_path):
    """The blank-page check itself: an empty page, one line of text and a page of plain text fail
    it; a few coloured shapes on white (like the report before its stylesheet applies) pass."""
    pages = {
        "empty": "",
        "loading": "<p>Loading Snakemake Report...</p>",
        "text": "<p>Loading Snakemake Report... and more words on the line</p>" * 20,
        "shapes": "".join(f'<div style="width:120px;height:12px;margin:6px;background:hsl({h},70%,50%)">'
                          "</div>" for h in range(0, 360, 10)),
    }
    problems = {}
    for name, body in pages.items():
        page = tmp_path / f"{name}.html"
        page.write_text(f"<!doctype html><html><body>{body}</body></html>")
        problems[name] = blank_page_problems(screenshot(chromium, page, tmp_path))
    assert problems["empty"] and problems["loading"] and problems["text"], problems
    assert not problems["shapes"], problems["shapes"]


def test_report_page_is_not_blank(report_html, chromium, tmp_path):
    pixels = screenshot(chromium, report_html, tmp_path)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0]), pixels.shape
    assert not blank_page_problems(pixels), blank_page_problems(pixels)


def test_report_lists_and_shows_every_figure(report_html, smoke_local, chromium, tmp_path):
    from PIL import Image

    workdir, _ = smoke_local
    figures = report_figures(workdir)
    assert any("/figures/" in f for f in figures) and any("/toy/" in f for f in figures), figures
    assert "results/smoke/figures/acc_vs_budget.png" in figures, figures     # the fine-tuning budget axis
    seen, last_view = probe(chromium, report_html, tmp_path)
    assert seen["done"] and not seen["errors"], (seen["errors"], seen["menu"])
    listed = {path for rows in seen["listings"].values() for path in rows}
    missing = [f for f in figures if f not in listed]
    assert not missing, f"figures not listed in the rendered report: {missing}; listed: {sorted(listed)}"
    for figure in figures:
        # Opened with its view button: an image that the browser decoded, at the file's size.
        shown = seen["images"].get(figure)
        assert shown and shown["src"].startswith("data:image/"), (figure, shown)
        if not figure.endswith(".svg"):
            with Image.open(workdir / figure) as image:
                assert (shown["width"], shown["height"]) == image.size, (figure, shown, image.size)
    assert not blank_page_problems(last_view), blank_page_problems(last_view)
