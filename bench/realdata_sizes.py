"""Cells of another size than training saw: every pass of a size scan, scored, to find a size choice that survives it.

`segment` measures the cells on a first pass at the model's own scale and resizes (size matching, at most 2x); on
images smoother than training (the sharpness gate) it keeps one of a scan of sizes (`SCAN_SCALES`): the best separated
as first shipped, since 2026-12-07 the steadiest, the pick this script found.
Enlarged 1.5x (as a higher magnification would show them), LIVECell's held-out images are not gated and size matching
fails: the first pass cuts the large cells into pieces of the size the model knows. This script records, for the kept
models of `bench/realdata.py` (`bench/out/realdata/work/*_ours*`), their held-out images at zooms `ZOOMS` (bilinear;
labels nearest) and passes at `FACTORS` x the model's scale: F1@0.5 against the truth, the cells found (number, median
diameter), `separated_area`, the mean cell score, and how well each pass agrees with its neighbouring sizes (F1@0.5
between their instances). Also the product's own choice (`segment` as it is). Rows: `bench/out/realdata_sizes/rows.jsonl`
(one per model and zoom; a stopped run resumes); report: `bench/results/realdata_sizes.json` (per model and zoom the
F1 of each pick, `PICKS`, and the sizes it picked; pooled per protocol, budget and zoom).

    python bench/realdata_sizes.py --match 15min     # about 3 CPU-minutes per model
    python bench/realdata_sizes.py --report
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
OUT = ROOT/'bench/out/realdata_sizes'
RESULTS = ROOT/'bench/results/realdata_sizes.json'
ZOOMS = (0.67, 1.0, 1.5, 2.0)
FACTORS = (0.25, 0.32, 0.4, 0.5, 0.63, 0.8, 1.0, 1.25, 1.6)
SEEN = (0.3, 2.1)   # passes whose zoom x factor falls outside are skipped (the cells far from any size training saw)

from realdata import ms, items_of, folds
from realdata_scan import parse, CRITERION, read_rows, append_row, kept_runs
from cellseg_nb.infer import neighbour_agreement   # each pass's mean agreement with its neighbouring sizes, as `steadiest` measures it

def f1_counts(gt, pred) -> tuple:
    "(tp, fp, fn) at IoU 0.5"
    from cellseg_nb.metrics import match_instances
    m = match_instances(gt, pred); return int(m['tp'][0]), int(m['fp'][0]), int(m['fn'][0])

def f1(tp, fp, fn): return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0

def passes(m, img, truth, factors=FACTORS) -> dict:
    "Every pass of the scan on one image: {factor: row} with its labels under '_labels'"
    from cellseg_nb.infer import infer_maps, labelled_cells, model_params, model_scale, separated_area
    from cellseg_nb.data.targets import median_diameter
    params, s0, names = model_params(m, None, None), m.scale, m.config.get('class_names')
    out = {}
    for f in factors:
        with model_scale(m, s0 * f):
            maps = infer_maps(m, img, progress=False); lab, cells = labelled_cells(maps, params, 1024, 128, names, False)
            pr = maps.probs(with_type=False)
        tp, fp, fn = f1_counts(truth, lab)
        out[f] = dict(tp=tp, fp=fp, fn=fn, f1=round(f1(tp, fp, fn), 4), n=int(lab.max() and len(np.unique(lab)) - 1),
                      d=round(float(median_diameter([lab])), 2) if lab.max() else 0.0, sep=round(separated_area(lab, pr['boundary']), 4),
                      score=round(float(cells['score'].mean()), 4) if len(cells) else 0.0,
                      fg=round(float((pr['fg'] > 0.5).mean()), 4), _labels=lab)
    for f, a in zip(out, neighbour_agreement([r['_labels'] for r in out.values()])): out[f]['agree'] = round(a, 4)
    return out

def one(run:Path, z:float) -> dict:
    "The held-out images of one kept model enlarged `z`x: the product's choice and every pass of the scan"
    import cv2, warnings
    from scipy import ndimage as ndi
    from realdata_scan import gated_model
    from cellseg_nb.infer import segment
    from cellseg_nb.data.targets import median_diameter
    key, m, rng, _, te = gated_model(run)
    items = [(n, img if z == 1 else cv2.resize(img, None, fx=z, fy=z, interpolation=cv2.INTER_LINEAR), lab if z == 1 else ndi.zoom(lab, z, order=0))
             for n, img, lab in items_of(key[0], te)]
    row = dict(run=run.name, zoom=z, product_scan=CRITERION, scale=m.scale, cell_diameter=m.config.get('cell_diameter'),
               cell_diameter_range=m.config.get('cell_diameter_range'), train_sharpness=rng, images=[])
    for n, img, lab in items:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter('ignore'); prod = segment(m, img)[0]
        ps = passes(m, img, lab, [f for f in FACTORS if SEEN[0] <= z * f <= SEEN[1]])
        ps = {f: {k: v for k, v in r.items() if k != '_labels'} for f, r in ps.items()}
        row['images'].append(dict(name=n, true_d=round(float(median_diameter([lab])), 2), product=dict(zip(('tp', 'fp', 'fn'), f1_counts(lab, prod))),
                                  passes={str(f): r for f, r in ps.items()}, seconds=round(time.perf_counter() - t, 1)))
    return row

def pooled_f1(images:list, pick) -> float:
    "F1@0.5 of one model's images pooled, each segmented at the pass `pick(passes)` chooses"
    c = np.sum([[im['passes'][pick(im['passes'])][k] for k in ('tp', 'fp', 'fn')] for im in images], 0); return f1(*c)

def inner(P:dict) -> list: return sorted(P, key=float)[1:-1]
PICKS = {   # how a scale is chosen from the recorded passes (keys: the factors as strings)
    'steadiest': lambda P: max(inner(P), key=lambda f: P[f]['agree']),   # what `scanned` picks (`steadiest`): the best agreement with both neighbours
    'separated': lambda P: max(P, key=lambda f: P[f]['sep']),            # what it picked before: the best separated cells
    'model_scale': lambda P: '1.0',                                      # the model's own scale, one pass
    'best': lambda P: max(P, key=lambda f: P[f]['f1']),                  # the best pass (knowing the truth)
}

def report(rows:list) -> dict:
    "Per protocol and budget of the kept models, and zoom: the product's F1 (as recorded) and each pick's, mean +- sd over models"
    out = {}
    for r in rows:
        p, b = parse(r['run'])[0], parse(r['run'])[3]
        g = out.setdefault(f"{'lc5-loio+lolo' if p.startswith('lc5-lo') else p} {b}", {}).setdefault(str(r['zoom']), {})   # LIVECell's held-out images together
        prod = [[im['product'][k] for k in ('tp', 'fp', 'fn')] for im in r['images']]
        g.setdefault(f"product[{r.get('product_scan', 'separated_area')}]", []).append(f1(*np.sum(prod, 0)))   # the scan the product had when it ran
        for n, pick in PICKS.items():
            if n == 'model_scale' and not all('1.0' in im['passes'] for im in r['images']): continue
            g.setdefault(n, []).append(pooled_f1(r['images'], pick))
        g.setdefault('models', []).append(r['run'])
    return {b: {z: {k: (v if k == 'models' else ms(v)) for k, v in g.items()} for z, g in zs.items()} for b, zs in out.items()}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--match', nargs='*', default=[], help='only work folders containing all of these')
    ap.add_argument('--zooms', nargs='*', type=float, default=list(ZOOMS))
    ap.add_argument('--report', action='store_true')
    a = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True); f_rows = OUT/'rows.jsonl'
    rows = read_rows(f_rows)
    if not a.report:
        for run in kept_runs('*_ours*', a.match):
            for z in a.zooms:
                if any(r['run'] == run.name and r['zoom'] == z for r in rows): continue
                r = one(run, z); rows.append(r); append_row(f_rows, r)
                pf = [f1(*(im['product'][k] for k in ('tp', 'fp', 'fn'))) for im in r['images']]
                best = [max(p['f1'] for p in im['passes'].values()) for im in r['images']]
                print(f"{run.name} x{z}: product F1 {np.mean(pf):.3f}, best pass {np.mean(best):.3f}, {sum(im['seconds'] for im in r['images']):.0f} s", flush=True)
    per_model = [dict(run=r['run'], zoom=r['zoom'], true_d=[im['true_d'] for im in r['images']], product_scan=r.get('product_scan', 'separated_area'),
                      product=round(f1(*np.sum([[im['product'][k] for k in ('tp', 'fp', 'fn')] for im in r['images']], 0)), 4),
                      **{n: round(pooled_f1(r['images'], pick), 4) for n, pick in PICKS.items() if all(pick(im['passes']) in im['passes'] for im in r['images'])},
                      picked={n: [pick(im['passes']) for im in r['images']] for n, pick in PICKS.items() if n != 'model_scale'}) for r in rows]
    RESULTS.write_text(json.dumps(dict(report=report(rows), zooms=list(ZOOMS), factors=list(FACTORS), seen=list(SEEN), models=per_model,
                                       when=time.strftime('%Y-%m-%d')), indent=1))
    for b, zs in report(rows).items():
        for z, g in zs.items(): print(b, z, ' '.join(f"{k} {v['mean']:.3f}" for k, v in g.items() if k != 'models'))

if __name__ == '__main__': main()
