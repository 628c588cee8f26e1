"""Issue 16, a screen: type each cell by its nearest per-type prototype of decoder features (linear discriminant analysis)
instead of, or together with, the per-pixel `type` head. Reads the models `bench/celltypes.py` trained
(`bench/out/celltypes/work/`); on true cells (not matched predictions), so it is a screen of the classifier, not the product.

Per model, on the true cells of: the training halves (`data/train`), the validation quarters (`data/val`, what
`cellseg train` calibrates on) and the test quarters of the known lines (bottom-right, never trained on):
- `pixel`: the product's rule, the mean type probability of the cell's pixels (temperature fitted on validation cells);
- `lda_val`: the nearest prototype (`fit_prototypes` of the validation cells, the ones the product already stores),
  probabilities softmax(-d²/2) at a temperature fitted on the validation cells cross-fitted in two halves;
- `lda_train`: prototypes of the training halves' cells (temperature on the validation cells);
- `fused`: pixel and `lda_val` log-probabilities added (temperature on the validation cells, cross-fitted);
- `lda_val_xi`: `lda_val` with prototypes from one image per line only and scored on the *other* image's test quarter
  (lines with two images: a new image of a known line, the case a user meets).

    python bench/celltypes_lda.py      # -> bench/results/celltypes_lda.json (about 1 CPU-minute per model)
"""
from __future__ import annotations
import json, sys, time
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
import celltypes as C

def true_cells(model, img, lab, line, class_names):
    "(pixel-head type probabilities (n, K), decoder features (n, C), true type (n,)) of the true cells of one image"
    from cellseg_nb.infer import infer_maps
    from cellseg_nb.postprocess import cell_type_probs, cell_means
    from cellseg_nb.data.targets import _compact_ids
    lab, ids = _compact_ids(lab)
    pr = infer_maps(model, img, device=None, compact=False, features=True).probs()
    has = np.bincount(lab.ravel(), minlength=len(ids))[1:] > 0
    p, e = cell_type_probs(lab, pr['type'])[1:][has], cell_means(lab, pr['features'])[1:][has]
    return p, e, np.full(len(p), class_names.index(line), int)

def lda_probs(e, mu, prec) -> np.ndarray:
    "softmax(-d²/2) over the prototypes: each cell's type probabilities by its Mahalanobis distances"
    from cellseg_nb.postprocess import novelty   # the product's distance, to one prototype at a time
    d = np.stack([novelty(e, [m], prec) for m in mu], 1)
    z = -d / 2; z = z - z.max(1, keepdims=True); q = np.exp(z)
    return q / q.sum(1, keepdims=True)

def fuse(a, b) -> np.ndarray:
    "Two sets of type probabilities combined as independent evidence: the normalised product"
    q = np.maximum(a, 1e-12) * np.maximum(b, 1e-12)
    return q / q.sum(1, keepdims=True)

def crossfit(e, t, seed=0) -> np.ndarray:
    "LDA probabilities of each cell from prototypes fitted on the other half of the cells"
    from cellseg_nb.postprocess import fit_prototypes
    half = np.random.default_rng(seed).permutation(len(t)) % 2 == 0; out = np.zeros((len(t), len(np.unique(t))))
    for a in (half, ~half): out[~a] = lda_probs(e[~a], *fit_prototypes(e[a], t[a]))
    return out

def score(p_val, t_val, p_test, t_test, rich) -> dict:
    "Accuracy, accuracy on lines with >= 2 training images and ECE of `p_test` at the temperature `p_val` chooses"
    from cellseg_nb.postprocess import fit_temperature, soften
    from cellseg_nb.metrics import expected_calibration_error
    T = fit_temperature(p_val, t_val); q = soften(p_test, T); k = q.argmax(1); ok = k == t_test
    return dict(acc=float(ok.mean()), acc_2plus=float(ok[rich].mean()) if rich.any() else float('nan'),
                ece=float(expected_calibration_error(q.max(1), ok)), ece_2plus=float(expected_calibration_error(q.max(1)[rich], ok[rich])) if rich.any() else float('nan'), T=T)

def one(run:Path) -> dict:
    import tifffile
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.core import cell_line_from_name
    from cellseg_nb.postprocess import fit_prototypes
    from realdata import lc5_items
    unknown, seed = run.name.split('_'); m = load_model(run/'run/best'); cn = m.config['class_names']
    def folder(split):
        out = []
        for f in sorted((run/'data'/split).glob(f'*_{split}.tif')):
            out.append((f.name.rsplit('_', 1)[0], *true_cells(m, tifffile.imread(f), tifffile.imread(str(f).replace('.tif', '_masks.tif')),
                                                              cell_line_from_name(f.name, cn), cn)))
        return out
    tr, va = folder('train'), folder('val')
    te = [(n, *true_cells(m, *C.pieces(i, l)['test'], n.split('_')[0], cn)) for n, i, l in lc5_items() if not n.startswith(unknown + '_')]
    cat = lambda rows, j: np.concatenate([r[j] for r in rows])
    counts = C.train_counts(run, cn); rich_types = [i for i, n in enumerate(counts) if n >= 2]
    pv, ev, tv = cat(va, 1), cat(va, 2), cat(va, 3); pt, et, tt = cat(te, 1), cat(te, 2), cat(te, 3); rich = np.isin(tt, rich_types)
    mu, prec = fit_prototypes(ev, tv); mu_tr, prec_tr = fit_prototypes(cat(tr, 2), cat(tr, 3))
    lv, lt = crossfit(ev, tv), lda_probs(et, mu, prec)
    out = dict(fold=unknown, seed=int(seed), counts=dict(zip(cn, counts)), n_val=int(len(tv)), n_test=int(len(tt)),
               pixel=score(pv, tv, pt, tt, rich), lda_val=score(lv, tv, lt, tt, rich),
               lda_train=score(lda_probs(ev, mu_tr, prec_tr), tv, lda_probs(et, mu_tr, prec_tr), tt, rich),
               fused=score(fuse(pv, lv), tv, fuse(pt, lt), tt, rich))
    # a new image of a known line: prototypes from one image of each line with two images, scored on the other image's test quarter
    names = sorted({r[0] for r in va}); by_line = {}
    for n in names: by_line.setdefault(cell_line_from_name(n, cn), []).append(n)
    if all(len(v) == 2 for v in by_line.values()):
        accs, accs_pix = [], []
        for j in (0, 1):
            fit = [r for r in va if r[0] in {v[j] for v in by_line.values()}]; ev_ = [r for r in te if r[0] in {v[1 - j] for v in by_line.values()}]
            q = lda_probs(cat(ev_, 2), *fit_prototypes(cat(fit, 2), cat(fit, 3)))
            accs.append(float((q.argmax(1) == cat(ev_, 3)).mean())); accs_pix.append(float((cat(ev_, 1).argmax(1) == cat(ev_, 3)).mean()))
        out['lda_val_xi'] = dict(acc=float(np.mean(accs)), pixel_acc=float(np.mean(accs_pix)), per_split=accs)
    print(json.dumps(out), flush=True)
    return out

def main():
    runs = [r for r in sorted((C.OUT/'work').glob('*_*')) if (r/'run/best/config.json').exists()]
    if not runs: sys.exit(f"no finished runs of bench/celltypes.py in {C.OUT/'work'}")
    rows = [one(r) for r in runs]
    pooled = {}
    for meth in ('pixel', 'lda_val', 'lda_train', 'fused'):
        for k in ('acc', 'acc_2plus', 'ece', 'ece_2plus'):
            v = [r[meth][k] for r in rows]
            pooled[f'{meth}.{k}'] = dict(mean=float(np.nanmean(v)), sd=float(np.nanstd(v, ddof=1)), n=len(v))
    xi = [r['lda_val_xi'] for r in rows if 'lda_val_xi' in r]
    if xi: pooled['lda_val_xi'] = dict(acc=float(np.mean([x['acc'] for x in xi])), pixel_acc=float(np.mean([x['pixel_acc'] for x in xi])), n=len(xi))
    (ROOT/'bench/results/celltypes_lda.json').write_text(json.dumps(dict(runs=rows, pooled=pooled, when=time.strftime('%Y-%m-%d')), indent=1))
    for k, v in pooled.items(): print(k, v)

if __name__ == '__main__': main()
