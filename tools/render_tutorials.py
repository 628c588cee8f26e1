"""Execute each tutorial (IN_TEST=1), render it to HTML with its figures, and screenshot it in headless Chromium.

Where Quarto cannot be installed this is the check that the tutorials render: `jupyter nbconvert --execute --to html`
runs every cell on the short CPU branch, the HTML must hold at least one figure and no error output, and headless
Chromium opens the page and takes a 1200x2400 screenshot. Everything goes to `bench/out/tutorials/` (git-ignored).

Usage:
  python tools/render_tutorials.py [--out DIR] [--only PATTERN] [--no-screenshot] [--timeout S]
  python tools/render_tutorials.py --proc-docs         # docs build: nbs/ -> _proc/ ready for `quarto render`
"""
from __future__ import annotations
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT/'nbs'/'tutorials'
BROWSERS = ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')
CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync',
                '--hide-scrollbars', '--window-size=1200,2400']
SKIP_FLAGS = ('slow', 'notest')  # nbdev-test skips these (pyproject tst_flags); the docs build must too


def find_browser() -> str|None:
    "The first headless-capable Chromium/Chrome on PATH (`$CHROME` wins)"
    if os.environ.get('CHROME'): return os.environ['CHROME']
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def render(nb:Path, out:Path, timeout:int=900) -> dict:
    "Execute `nb` with IN_TEST=1 (working directory: its folder) and write `out/<stem>.html`; returns timing and checks"
    nb, out = Path(nb).resolve(), Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != 'MPLBACKEND'}  # Agg would hide the notebook's inline figures
    env.update(IN_TEST='1', PYTHONWARNINGS='ignore')
    cmd = [sys.executable, '-m', 'jupyter', 'nbconvert', '--execute', '--to', 'html', str(nb), '--output-dir', str(out),
           f'--ExecutePreprocessor.timeout={timeout}', '--ExecutePreprocessor.kernel_name=python3']
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=nb.parent, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    html = out/f'{nb.stem}.html'
    res = dict(tutorial=nb.name, seconds=round(secs, 1), ok=r.returncode == 0, html=str(html))
    if r.returncode != 0:
        res['error'] = r.stderr.strip().splitlines()[-25:]
        return res
    text = html.read_text(errors='replace')
    res['figures'] = len(re.findall(r'<img[^>]+src="data:image/(?:png|jpeg|svg)', text))
    res['error_outputs'] = len(re.findall(r'Traceback \(most recent call last\)', text))
    res['html_kb'] = round(html.stat().st_size/1024)
    if res['figures'] < 1: res.update(ok=False, error=[f'{html}: no figure in the rendered page'])
    if res['error_outputs']: res.update(ok=False, error=[f'{html}: a traceback is shown in the page'])
    return res


def screenshot(html:Path, png:Path, browser:str|None=None, timeout:int=120, size=(1200, 2400)) -> dict:
    "Open `html` in headless Chromium and save a `size` (default 1200x2400) screenshot to `png`"
    browser = browser or find_browser()
    if browser is None:
        return dict(ok=False, error='no Chromium found: apt-get install -y chromium (Debian) or set $CHROME')
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix='chrome-profile-') as prof:
        cmd = [browser, *[f for f in CHROME_FLAGS if not f.startswith('--window-size')], f'--window-size={size[0]},{size[1]}',
               f'--user-data-dir={prof}', f'--screenshot={png}', html.resolve().as_uri()]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    ok = png.exists() and png.stat().st_size > 10_000  # a blank page compresses to a few kB
    res = dict(ok=ok, png=str(png), seconds=round(time.perf_counter() - t0, 1), browser=Path(browser).name)
    if ok: res['png_kb'] = round(png.stat().st_size/1024)
    else: res['error'] = (r.stderr or 'no screenshot written').strip().splitlines()[-5:]
    return res


def full_page(html:Path, png:Path, browser:str|None=None, max_height:int=16000) -> dict:
    "A screenshot of the whole page (up to `max_height` px), trimmed of the blank space below it"
    res = screenshot(html, png, browser, size=(1200, max_height))
    if res['ok']:
        import numpy as np
        from PIL import Image
        im = Image.open(png); rows = np.where(np.asarray(im.convert('L')).min(1) < 250)[0]
        im.crop((0, 0, im.width, int(rows.max()) + 40 if len(rows) else im.height)).save(png)
        res['size'] = Image.open(png).size
    return res


KERNELSPEC = {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}
SHOW_DOC_IMPORT = '#| include: false\nfrom nbdev.showdoc import show_doc'  # the show_doc cells nbdev adds run in Quarto's kernel


def proc_docs() -> Path:
    "nbdev's docs processing (`nbs/` -> `_proc/`, as `nbdev-proc-nbs`) without executing cells, then `prep_docs`"
    # Quarto executes every page (`execute: enabled` in _quarto.yml), so nbdev's own partial execution of imports,
    # exports and show_doc cells is redundant, and it fails on cells that mix imports with code using earlier names.
    import nbdev.processors as P, nbdev.doclinks
    from nbdev.quarto import refresh_quarto_yml
    from nbdev.serve import proc_nbs
    from nbdev.config import get_config
    for m in ('begin', '__call__', 'end'): setattr(P.exec_show_docs, m, lambda self, *a: None)
    cfg = get_config(); os.chdir(cfg.config_path)
    refresh_quarto_yml(); nbdev.doclinks._build_modidx()
    cache = proc_nbs(cfg.nbs_path, n_workers=0)  # serial, in this process, so the patch above applies
    print(f'{cache}: {prep_docs(cache)} slow/notest cells set to eval: false')
    return cache

def prep_docs(folder) -> int:
    "Ready nbdev's processed notebooks in `folder` for Quarto to execute: `slow`/`notest` cells get `#| eval: false`, a missing kernelspec is set"
    import nbformat
    pat = re.compile(r'^#\|\s*(?:' + '|'.join(SKIP_FLAGS) + r')\b', re.M)
    n = 0
    for p in Path(folder).rglob('*.ipynb'):
        nb = nbformat.read(p, as_version=4); changed = 'kernelspec' not in nb.metadata
        nb.metadata.setdefault('kernelspec', KERNELSPEC)
        if any('show_doc(' in c.source for c in nb.cells if c.cell_type == 'code') and SHOW_DOC_IMPORT not in [c.source for c in nb.cells]:
            at = 1 if nb.cells and nb.cells[0].source.startswith('---') else 0  # after the front matter
            nb.cells.insert(at, nbformat.v4.new_code_cell(SHOW_DOC_IMPORT)); changed = True
        for c in nb.cells:
            if c.cell_type == 'code' and pat.search(c.source) and not re.search(r'^#\|\s*eval:', c.source, re.M):
                c.source = '#| eval: false\n' + c.source; changed = True; n += 1
        if changed: nbformat.write(nb, p)
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(ROOT/'bench'/'out'/'tutorials'), help='output folder (git-ignored)')
    ap.add_argument('--only', default='', help='render only tutorials whose file name contains this')
    ap.add_argument('--no-screenshot', action='store_true')
    ap.add_argument('--full', action='store_true', help='also a whole-page screenshot, <stem>_full.png')
    ap.add_argument('--index', action='store_true', help='also render the home page, nbs/index.ipynb')
    ap.add_argument('--timeout', type=int, default=900, help='seconds per cell')
    ap.add_argument('--proc-docs', action='store_true', help="only run nbdev's docs processing into _proc/ for `quarto render` (no execution), then exit")
    ap.add_argument('--prep-docs', metavar='DIR', help="only ready nbdev's processed notebooks in DIR for Quarto (slow/notest cells -> eval: false), then exit")
    a = ap.parse_args(argv)
    if a.proc_docs: proc_docs(); return 0
    if a.prep_docs:
        print(f'{a.prep_docs}: {prep_docs(a.prep_docs)} slow/notest cells set to eval: false'); return 0
    nbs = sorted(p for p in TUTORIALS.glob('*.ipynb') if a.only in p.name)
    if a.index: nbs.insert(0, ROOT/'nbs'/'index.ipynb')
    if not nbs: print(f'no tutorials in {TUTORIALS} matching {a.only!r}', file=sys.stderr); return 2
    out = Path(a.out); results = []
    for nb in nbs:
        print(f'rendering {nb.name} ...', flush=True)
        res = render(nb, out, a.timeout)
        if res['ok'] and not a.no_screenshot:
            shot = screenshot(Path(res['html']), out/f'{nb.stem}.png')
            res['screenshot'] = shot; res['ok'] = shot['ok']
            if a.full: res['full_page'] = full_page(Path(res['html']), out/f'{nb.stem}_full.png')
        results.append(res)
        print(json.dumps(res, indent=1), flush=True)
    (out/'render.json').write_text(json.dumps(results, indent=1))
    print(f"\n{'tutorial':<40} {'s (IN_TEST, this CPU)':>22} {'figures':>8}  screenshot")
    for r in results:
        sh = r.get('screenshot', {})
        print(f"{r['tutorial']:<40} {r['seconds']:>22.1f} {r.get('figures', 0):>8}  {sh.get('png', '-') if sh.get('ok') else sh.get('error', '-')}")
    bad = [r['tutorial'] for r in results if not r['ok']]
    if bad: print(f'FAILED: {bad}', file=sys.stderr); return 1
    return 0


if __name__ == '__main__': sys.exit(main())
