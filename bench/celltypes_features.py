"""Issue 16, a lead for the open set: do distances to per-type feature prototypes flag unknown cells better than the
product's score (1 - calibrated type probability)? Reads the models `bench/celltypes.py` trained (`bench/out/celltypes/work/`).

For each model: every true cell's mean feature vector (the decoder's full-resolution features, and the encoder's deepest
features upsampled), per-type means and a shared covariance fitted on the validation quarters' cells, and each test
cell's smallest Mahalanobis distance as its unknown score; AUROC of known test cells (bottom-right quarters) against the
held-out line's cells and against Usiigaci's. True cells (not matched predictions), so the figures are an upper bound
for what a product score built this way would reach on predicted cells.

    python bench/celltypes_features.py      # -> bench/results/celltypes_features.json (about 2 CPU-minutes per model)
"""
from __future__ import annotations
import json, sys, time
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
import celltypes as C
SOURCES = ('decoder', 'encoder_deepest')

def cell_features(model, img, lab, source:str) -> np.ndarray:
    "(cells, C) mean feature vector of each true cell (labels in increasing order) from one forward pass on the whole image"
    import torch, torch.nn.functional as F
    x = C.model_input(model, img)
    got, mod = {}, model.decoder if source == 'decoder' else model.encoder
    h = mod.register_forward_hook(lambda m, a, o: got.__setitem__('y', o if source == 'decoder' else o[-1]))
    with torch.inference_mode(): model.eval()(x)
    h.remove()
    y, (H, W) = got['y'], lab.shape
    if source == 'decoder':   # full resolution of the (scaled, padded) input: crop, then back to the image's size
        y = y[..., :max(1, round(H * model.scale)), :max(1, round(W * model.scale))]
    y = F.interpolate(y.float(), size=(H, W), mode='bilinear', align_corners=False)[0].numpy()
    ids = np.unique(lab[lab > 0]); lf = lab.ravel(); n = np.bincount(lf, minlength=int(lab.max()) + 1)
    E = np.stack([np.bincount(lf, c.ravel(), minlength=int(lab.max()) + 1) for c in y], 1) / np.maximum(n, 1)[:, None]
    return E[ids]

def prototypes(feats:dict):
    "Per-type means and the shared (shrunk) precision matrix of {type: (cells, C)}"
    mu = {k: v.mean(0) for k, v in feats.items()}
    z = np.concatenate([v - mu[k] for k, v in feats.items()]); cov = np.cov(z.T)
    return mu, np.linalg.inv(cov + 0.1 * np.trace(cov) / len(cov) * np.eye(len(cov)))

def distance(E, mu, P) -> np.ndarray:
    return np.min([np.einsum('nc,cd,nd->n', E - m, P, E - m) for m in mu.values()], 0)

def one(run:Path) -> dict:
    import tifffile
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.metrics import auroc
    from realdata import lc5_items, usi_items
    unknown, seed = run.name.split('_'); m = load_model(run/'run/best'); cn = m.config['class_names']
    val = [(f.name.split('_')[0], tifffile.imread(f), tifffile.imread(str(f).replace('_val.tif', '_val_masks.tif')))
           for f in sorted((run/'data/val').glob('*_val.tif'))]
    test = [(n.split('_')[0], *(C.pieces(i, l)['test'] if not n.startswith(unknown + '_') else (i, l))) for n, i, l in lc5_items()]
    usi = [('usiigaci', i, l) for _, i, l in usi_items(C.USI_TEST)]
    out = dict(fold=unknown, seed=int(seed))
    for src in SOURCES:
        fv = {}
        for line, i, l in val: fv.setdefault(cn.index(line), []).append(cell_features(m, i, l, src))
        mu, P = prototypes({k: np.concatenate(v) for k, v in fv.items()})
        d = {g: np.concatenate([distance(cell_features(m, i, l, src), mu, P) for line, i, l in items if sel(line)]) for g, items, sel in
             (('known', test, lambda s: s != unknown), ('lolo', test, lambda s: s == unknown), ('usiigaci', usi, lambda s: True))}
        for g in ('lolo', 'usiigaci'):
            out[f'auroc_{g}_{src}'] = auroc(np.r_[d['known'], d[g]], np.r_[np.zeros(len(d['known'])), np.ones(len(d[g]))])
        out['n'] = {g: len(v) for g, v in d.items()}
    print(json.dumps(out), flush=True)
    return out

def main():
    runs = [r for r in sorted((C.OUT/'work').glob('*_*')) if (r/'run/best/config.json').exists() and (C.OUT/'cells'/f'{r.name}.npz').exists()]
    if not runs: sys.exit(f"no finished runs of bench/celltypes.py in {C.OUT/'work'}")
    rows = [one(r) for r in runs]
    keys = [k for k in rows[0] if k.startswith('auroc_')]
    pooled = {k: dict(mean=float(np.nanmean([r[k] for r in rows])), sd=float(np.nanstd([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0,
                      n=len(rows)) for k in keys}
    (ROOT/'bench/results/celltypes_features.json').write_text(json.dumps(dict(runs=rows, pooled=pooled, when=time.strftime('%Y-%m-%d')), indent=1))
    for k, v in pooled.items(): print(f"{k}: {v['mean']:.3f} ± {v['sd']:.3f} (n={v['n']})")

if __name__ == '__main__': main()
