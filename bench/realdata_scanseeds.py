"""Images from another microscope: which seed height should `segment`'s scan of sizes use?

A `clip` model seeds its cells at distance-map peaks rising at least its tuned height (0.03) above their surroundings,
a height chosen on LIVECell's dense images. On images the sharpness gate sends to the scan (another microscope or
magnification) the LIVECell-trained models cut Usiigaci's cells into pieces at every size (about 1.4 objects per cell
at the steadiest one). This script records, for the kept models of `bench/realdata.py`, every pass of the scan
(`SCAN_SCALES` x the model's scale) post-processed at every seed height of `HEIGHTS` (None: the model's tuned one; the
other thresholds kept): true positives, false positives and misses at IoU 0.5, and each pass's `agreement` with its
neighbouring sizes, on the gated images only; then scores, per model and height, the steadiest size (what `scanned`
keeps), and the size and height that agree best with their neighbouring sizes (`joint`). Three sets of images:
- `lc5-usiigaci` models on Usiigaci's test sets 41-45 (the benchmark's) or, with `--split val`, its validation sets
  36-40 (to choose a height on);
- with `--zoom Z`, the LIVECell models' (`lc5-loio`, `lc5-lolo`) held-out images enlarged Z times (bilinear, labels
  nearest), those the gate sends to the scan: a second "microscope" that is not Usiigaci.
Rows: `bench/out/realdata_scanseeds/rows.jsonl` (one per model, split and zoom; a stopped run resumes); report:
`bench/results/realdata_scanseeds.json`.

    python bench/realdata_scanseeds.py --match 15min                       # about 3.5 CPU-minutes per model
    python bench/realdata_scanseeds.py --match 15min --split val
    python bench/realdata_scanseeds.py --match 15min --zoom 2
    python bench/realdata_scanseeds.py --report
"""
from __future__ import annotations
import argparse, dataclasses, json, sys, time, warnings
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
OUT = ROOT/'bench/out/realdata_scanseeds'
RESULTS = ROOT/'bench/results/realdata_scanseeds.json'
HEIGHTS = (None, 0.05, 0.075, 0.1, 0.15)   # None: the model's tuned height

from realdata import ms, items_of, folds
from realdata_scan import gated_model, read_rows, append_row, kept_runs
from realdata_sizes import f1_counts, neighbour_agreement
from realdata_smoothfg import f1, steady

def test_items(key, te, split:str, zoom:float) -> list:
    "The images a model is scored on here: its held-out ones (Usiigaci's validation sets with `split='val'`), enlarged `zoom`x"
    import cv2
    from scipy import ndimage as ndi
    if split == 'val': te = folds('usiigaci')['41-45'][1]
    items = items_of('usiigaci' if split == 'val' else key[0], te)
    if zoom == 1: return items
    return [(n, cv2.resize(img, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR), ndi.zoom(lab, zoom, order=0)) for n, img, lab in items]

def one(run:Path, split:str='test', zoom:float=1.0) -> dict:
    "Every pass (size x seed height) of one kept model on the images of `test_items` that the gate sends to the scan"
    from cellseg_nb.infer import model_params, model_scale, infer_maps, labelled_cells, smoother_than_training, SCAN_SCALES
    key, m, _, _, te = gated_model(run)
    p0, s0, names = model_params(m, None, None), m.scale, m.config.get('class_names')
    out = dict(run=run.name, split=split, zoom=zoom, h0=p0.seed_h, images=[])
    t = time.perf_counter()
    for n, img, gt in test_items(key, te, split, zoom):
        if not smoother_than_training(m, img): continue
        labs = {h: [] for h in HEIGHTS}
        for f in SCAN_SCALES:
            with model_scale(m, s0 * f), warnings.catch_warnings():
                warnings.simplefilter('ignore'); maps = infer_maps(m, img, progress=False)
            for h in HEIGHTS: labs[h].append(labelled_cells(maps, p0 if h is None else dataclasses.replace(p0, seed_h=h), 1024, 128, names, False)[0])
        out['images'].append(dict(name=n, by_h={str(h): [dict(zip(('tp', 'fp', 'fn'), f1_counts(gt, lab)), agree=round(a, 4))
                                                         for lab, a in zip(labs[h], neighbour_agreement(labs[h]))] for h in HEIGHTS}))
    out['sec'] = round(time.perf_counter() - t)
    return out

def scores(r:dict) -> dict:
    "Pooled F1@0.5 and objects found of one row's images at each height, each image at its steadiest size"
    out = {}
    for h in r['images'][0]['by_h']:
        c = np.zeros(3)
        for im in r['images']: P = im['by_h'][h]; c += [P[steady(P)][k] for k in ('tp', 'fp', 'fn')]
        out[f'h{h}'] = dict(f1=round(f1(c), 4), n_pred=int(c[0] + c[1]), n_true=int(c[0] + c[2]))
    c = np.zeros(3)
    for im in r['images']:   # `joint`: the size and height whose cells agree best with their neighbouring sizes
        h, i = max(((h, i) for h, P in im['by_h'].items() for i in range(1, len(P) - 1)), key=lambda x: im['by_h'][x[0]][x[1]]['agree'])
        c += [im['by_h'][h][i][k] for k in ('tp', 'fp', 'fn')]
    out['joint'] = dict(f1=round(f1(c), 4), n_pred=int(c[0] + c[1]), n_true=int(c[0] + c[2]))
    return out

def group(r:dict) -> str:
    "Which images and models a row counts for: `{images} {budget}`"
    b = r['run'].split('_')[-2]
    if r['run'].startswith('lc5-usiigaci'): return f"usiigaci {r['split']} {b}"
    return f"livecell x{r['zoom']:g} gated {b}"

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--match', nargs='*', default=[], help='only work folders containing all of these')
    ap.add_argument('--split', default='test', choices=['test', 'val'])
    ap.add_argument('--zoom', type=float, default=1.0, help="enlarge the LIVECell models' held-out images (1: Usiigaci's models)")
    ap.add_argument('--report', action='store_true')
    a = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True); f_rows = OUT/'rows.jsonl'
    rows = read_rows(f_rows)
    if not a.report:
        for run in kept_runs('lc5-usiigaci_*_ours*' if a.zoom == 1 else 'lc5-lo*_ours*', a.match):
            if any(r['run'] == run.name and r['split'] == a.split and r['zoom'] == a.zoom for r in rows): continue
            r = one(run, a.split, a.zoom); rows.append(r); append_row(f_rows, r)
            if r['images']: print(run.name, a.split, a.zoom, ' '.join(f"{k} {v['f1']:.3f}" for k, v in scores(r).items()), f"{r['sec']} s", flush=True)
    per = [dict(run=r['run'], split=r['split'], zoom=r['zoom'], h0=r['h0'], images=[im['name'] for im in r['images']], **scores(r)) for r in rows if r['images']]
    groups = {}
    for p in per:
        g = groups.setdefault(group(p), {}); hs = [k for k in p if (k.startswith('h') and k != 'h0') or k == 'joint']
        for k in hs: g.setdefault(k, []).append(p[k]['f1'] - p['hNone']['f1'])
        g.setdefault('models', []).append(p['run'])
    gain = {n: {k: (v if k == 'models' else dict(ms(v), better=int(sum(x > 0.005 for x in v)), worse=int(sum(x < -0.005 for x in v)))) for k, v in g.items() if k != 'hNone'}
            for n, g in groups.items()}
    RESULTS.write_text(json.dumps(dict(heights=list(HEIGHTS), models=per, gain_over_tuned=gain, when=time.strftime('%Y-%m-%d')), indent=1))
    for n, g in gain.items():
        print(n, f"({len(g['models'])} models):", ' '.join(f"{k} {v['mean']:+.3f} +- {v['sd']:.3f} ({v['better']}/{v['worse']})" for k, v in g.items() if k != 'models'))

if __name__ == '__main__': main()
