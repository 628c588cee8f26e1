"""Cell size from the encoder's style, as Cellpose's size model: does it find the scale where the first pass cannot?

The product measures each image's cell size on a first pass and segments it again resized to the training size
(`cellseg_nb.infer.segment`). The first pass is biased towards the training size: cells larger than the training
cells are cut into training-sized pieces, dense clusters are merged, so the measured size moves far less than the
true one (`bench/realdata_diameter.py`, the benchmarks page). Cellpose instead regresses the log cell diameter on
its network's style vector (the global average of the deepest features, L2-normalised), fitted on the training
images shown at many zooms, then refines that estimate with one segmentation. This script tries that on the models
`bench/realdata.py` kept (`bench/out/realdata/work/lc5-*_ours_*`), without training them again:
- the style of an image at zoom z is the L2-normalised concatenation of the global averages of the encoder's last
  `STYLE_LEVELS` levels, computed at the model's scale times z;
- a ridge regression on the standardised style predicts log(median cell diameter in the model's pixels / the
  training target), fitted on the fold's training images at `ZOOMS` x 4 flips with their true diameters; its penalty
  (`L2S`) is the one that predicts a left-out training image best (leave one image out), whose error is reported;
- each held-out image (the fold's, and Usiigaci `--usiigaci` sets, another microscope) is segmented at the fixed
  scales `GRID` (and the product's matching is computed from each of those passes), with the product's two passes,
  the product's matching applied once more (`iter2`) and told the true median diameter (`true`, the oracle).
`--report` then scores `style` (the size model's scale; F1 at the nearest grid scale) and `style+refine` (the
product's matching from there), against `none` (the model's scale), `product`, `iter2` and `true`: F1@0.5 and the
log error of each scale against the true one, per image and pooled by domain, into
`bench/results/realdata_sizemodel.json`. Each finished image is appended to `bench/out/realdata_sizemodel/runs.jsonl`
(a stopped run resumes; the training styles are kept beside it).

    python bench/realdata_sizemodel.py --usiigaci 41   # about 1 minute per LIVECell image, 8 per Usiigaci image, 2 cores
    python bench/realdata_sizemodel.py --report
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
OUT = ROOT/'bench/out/realdata_sizemodel'
RESULTS = ROOT/'bench/results/realdata_sizemodel.json'
ZOOMS = tuple(np.round(np.exp(np.linspace(np.log(0.5), np.log(2), 9)), 3))  # training zooms x the model's scale
STYLE_LEVELS = 2   # the deepest encoder levels averaged into the style
USI_SETS = (41,)
VARIANTS = ('none', 'product', 'iter2', 'style', 'style+refine', 'true')

from realdata import ms, items_of, folds, OUT as RD
from realdata_diameter import f1_of

def style(m, img, z:float, flip:int=0) -> np.ndarray:
    "The L2-normalised style of raw `img` shown at `z` x the model's scale (`flip`: 0-3, flips of the image)"
    import torch, torch.nn.functional as F
    from cellseg_nb.core import normalize_image
    from cellseg_nb.infer import normalisation_of
    x = normalize_image(img, **normalisation_of(m))
    if flip & 1: x = x[:, ::-1]
    if flip & 2: x = x[::-1]
    t = torch.from_numpy(np.ascontiguousarray(x))[None, None]
    H, W = t.shape[-2:]; s = m.scale * z
    t = F.interpolate(t, size=(max(int(round(H * s)), 32), max(int(round(W * s)), 32)), mode='bilinear', align_corners=False)
    with torch.no_grad(): f = m.encoder(m.pad(t))
    v = torch.cat([g.mean((-2, -1)).flatten() for g in f[-STYLE_LEVELS:]]).numpy().astype(np.float64)
    return v / max(np.linalg.norm(v), 1e-12)

GRID = tuple(np.round(2.0 ** (np.arange(-4, 4) / 4), 3))   # fixed scales x the model's own, 0.5 .. 1.68
L2S = (1e-3, 1e-2, 0.1, 1.0, 10.0)   # ridge penalties tried on standardised styles (chosen by leave-one-training-image-out)

def ridge(X, y, l2):
    "Ridge on standardised columns: a function style -> prediction"
    mx, sx, my = X.mean(0), X.std(0) + 1e-9, y.mean(); Z = (X - mx) / sx
    A = np.linalg.solve(Z.T @ Z + l2 * len(y) * np.eye(Z.shape[1]), Z.T @ (y - my))
    return lambda x: ((np.atleast_2d(x) - mx) / sx) @ A + my

def fit(X, y, groups, l2s=L2S):
    "The ridge whose penalty predicts held-out training images best (leave one image out); `(predict, l2, cv rmse)`"
    cv = {}
    for l2 in l2s:
        e = [ridge(X[groups != g], y[groups != g], l2)(X[groups == g]) - y[groups == g] for g in np.unique(groups)]
        cv[l2] = float(np.sqrt(np.mean(np.concatenate(e) ** 2)))
    l2 = min(cv, key=cv.get)
    return ridge(X, y, l2), l2, cv[l2]

def train_styles(m, train_items):
    "Styles of the training images at `ZOOMS` x 4 flips, with log(cell size in model px / target) and the image index"
    from cellseg_nb.data.targets import median_diameter
    target = m.config['cell_diameter']; X, y, g = [], [], []
    for i, (_, img, gt) in enumerate(train_items):
        d = median_diameter([gt]) * m.scale
        for z in ZOOMS:
            for fl in range(4): X.append(style(m, img, z, fl)); y.append(np.log(d * z / target)); g.append(i)
    return np.array(X), np.array(y), np.array(g)

def one(run:Path, name:str, img, gt) -> dict:
    "F1@0.5 at the fixed scales `GRID` (and the product's matching from each), the product's two passes, and the image's styles"
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.infer import _segment, model_scale, second_pass_scale, model_params
    from cellseg_nb.data.targets import median_diameter
    m = load_model(run/'run/best'); pp = model_params(m); s0, target = m.scale, m.config['cell_diameter']
    def at(s):
        with model_scale(m, s): return _segment(m, img, pp, 1024, 128, False)[0]
    def rematch(lab, s):   # the product's matching from a pass at scale `s` (None: keep `s`)
        with model_scale(m, s): return second_pass_scale(m, lab)
    r = dict(run=run.name, image=name, n_true=int(len(np.unique(gt)) - 1), true_scale=target / median_diameter([gt]), s0=s0,
             grid={}, styles=[style(m, img, 1.0, fl).tolist() for fl in range(4)])
    for f in GRID:
        lab = at(s0 * f); r['grid'][str(f)] = dict(f1=f1_of(gt, lab), cells=int(lab.max()), rematch=rematch(lab, s0 * f))
    s1 = r['grid']['1.0']['rematch'] or s0; lab1 = at(s1) if s1 != s0 else None
    r['product'] = dict(scale=s1, f1=f1_of(gt, lab1) if lab1 is not None else r['grid']['1.0']['f1'])
    s2 = (rematch(lab1, s1) if lab1 is not None else None) or s1
    r['iter2'] = dict(scale=s2, f1=f1_of(gt, at(s2)) if s2 != s1 else r['product']['f1'])
    r['true'] = dict(scale=r['true_scale'], f1=f1_of(gt, at(r['true_scale'])))
    return r

def nearest(r, s):
    "The grid point nearest (in log) to scale `s`"
    return min(r['grid'], key=lambda f: abs(np.log(float(f) * r['s0'] / s)))

def estimates(r, sm) -> dict:
    "Each variant's scale and F1 on image row `r` (style variants: F1 at the nearest grid scale); `sm`: the run's size model"
    out = {'none': (r['s0'], r['grid']['1.0']['f1']), 'product': (r['product']['scale'], r['product']['f1']),
           'iter2': (r['iter2']['scale'], r['iter2']['f1']), 'true': (r['true']['scale'], r['true']['f1'])}
    if sm is not None:
        d = float(np.mean(sm(np.array(r['styles'])))); s = float(np.clip(r['s0'] * np.exp(-d), r['s0'] / 2, r['s0'] * 1.68))
        g = nearest(r, s); out['style'] = (s, r['grid'][g]['f1'])
        s2 = r['grid'][g]['rematch'] or float(g) * r['s0']; out['style+refine'] = (s2, r['grid'][nearest(r, s2)]['f1'])
    return out

def group(run:str) -> str:
    p, *_, budget, seed = run.split('_')
    return f'{p} {budget}'

def report() -> dict:
    rows = [json.loads(l) for l in open(OUT/'runs.jsonl')]
    models = {}
    for f in OUT.glob('*.npz'):
        d = np.load(f); models[f.stem] = fit(d['X'], d['y'], d['g'])
    out = dict(variants=list(VARIANTS), zooms=list(ZOOMS), grid=list(GRID), style_levels=STYLE_LEVELS, l2s=list(L2S), when=time.strftime('%Y-%m-%d'),
               size_models={k: dict(l2=v[1], cv_rmse=round(v[2], 4)) for k, v in models.items()}, images=[], by_domain={})
    for r in rows:
        e = estimates(r, models.get(r['run'], (None,))[0])
        out['images'].append(dict(run=r['run'], image=r['image'], true_scale=r['true_scale'],
                                  **{v: dict(scale=round(s, 4), log_err=round(float(np.log(s / r['true_scale'])), 3), f1=round(f, 4)) for v, (s, f) in e.items()}))
    for dom, sel in (('LIVECell held out', lambda r: not r['image'].startswith('set')), ('Usiigaci (another microscope)', lambda r: r['image'].startswith('set'))):
        rs = [r for r in out['images'] if sel(r)]
        if not rs: continue
        out['by_domain'][dom] = dict(images=len(rs), models=len({r['run'] for r in rs}),
                                     f1={v: ms([r[v]['f1'] for r in rs if v in r]) for v in VARIANTS},
                                     abs_log_err={v: ms([abs(r[v]['log_err']) for r in rs if v in r]) for v in VARIANTS})
    RESULTS.write_text(json.dumps(out, indent=1))
    for k, v in out['size_models'].items(): print(f"{k}: size model l2 {v['l2']}, leave-one-image-out rmse {v['cv_rmse']:.3f} (log)")
    for r in out['images']: print(f"{r['run'][:28]:28s} {r['image'][:22]:22s}", ' '.join(f"{v} {r[v]['f1']:.2f} ({r[v]['log_err']:+.2f})" for v in VARIANTS if v in r))
    for dom, t in out['by_domain'].items():
        print(f"{dom} ({t['images']} image-model pairs, {t['models']} models)")
        for v in VARIANTS: print(f"  {v:14s} F1 {t['f1'][v]['mean']:.3f} ± {t['f1'][v]['sd']:.3f}   |log size error| {t['abs_log_err'][v]['mean']:.3f}")
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0]); ap.add_argument('--report', action='store_true')
    ap.add_argument('--runs', nargs='*', help='work folder names (default: every kept lc5 model of ours)')
    ap.add_argument('--usiigaci', nargs='*', type=int, default=list(USI_SETS), help='Usiigaci sets to score too (about 8 minutes each)')
    a = ap.parse_args(argv)
    if a.report: return report()
    import torch; torch.set_num_threads(2)
    from cellseg_nb.models.unet import load_model
    OUT.mkdir(parents=True, exist_ok=True); runs = OUT/'runs.jsonl'
    done = {(r['run'], r['image']) for r in map(json.loads, open(runs))} if runs.exists() else set()
    for run in sorted((RD/'work').glob('lc5-*_ours_*')):
        if a.runs and run.name not in a.runs: continue
        p = run.name.split('_')[0]; fold = run.name[len(p) + 1:].rsplit('_ours_', 1)[0]
        if not (run/'run/best').exists() or fold not in folds(p): continue
        tr, _, te = folds(p)[fold]
        todo = [(n, img, gt) for n, img, gt in items_of(p, te) + (items_of('usiigaci', [f'set{s}' for s in a.usiigaci]) if a.usiigaci else []) if (run.name, n) not in done]
        if not todo: continue
        if not (OUT/f'{run.name}.npz').exists():
            t0 = time.perf_counter(); X, y, g = train_styles(load_model(run/'run/best'), items_of(p, tr))
            np.savez(OUT/f'{run.name}.npz', X=X, y=y, g=g); sm = fit(X, y, g)
            print(run.name, f"size model: {len(y)} samples, l2 {sm[1]}, leave-one-image-out rmse {sm[2]:.3f} (log), {time.perf_counter() - t0:.0f} s", flush=True)
        for n, img, gt in todo:
            t0 = time.perf_counter(); r = one(run, n, img, gt)
            with open(runs, 'a') as f: f.write(json.dumps(r) + '\n')
            print(' ', n, {k: round(v['f1'], 3) for k, v in r['grid'].items()}, 'product', round(r['product']['f1'], 3), 'true', round(r['true']['f1'], 3),
                  f'{time.perf_counter() - t0:.0f} s', flush=True)
    return report()

if __name__ == '__main__': main()
