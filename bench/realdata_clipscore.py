"""The cell score of `clip` models: does its factor of the cell's peak distance rank small cells too low for AP?

A cell's score (`cell_table`) multiplies its mean foreground and (1 - boundary) probabilities by the peak of the `dist`
map inside it. For the `edt` target every true cell peaks near 1, so the factor says how sure the model is of the
cell's core; for the `clip` target (the default since 2026-12-07) a cell peaks at its radius over `DIST_CLIP`, so the
factor also ranks small cells below large ones, and COCO AP, which ranks by score, may pay for it (clip's AP trailed
edt's on 5 of 7 paired 15-minute runs). This re-scores the held-out cells that the runs of `bench/realdata.py`
recorded (`bench/out/realdata/preds/`, the product's; the cells are not changed, so F1 is not either) with the maps
`segment` made for them (its last pass's scale, flips at test time), in these variants:
- `product`: the score as `segment` gives it (recomputed; `recorded` is the run's own, a check);
- `nodist`: without the peak-distance factor; `sqrtdist`: its square root;
- `fit`: the peak over the peak the cell's own shape would give (`min(r * scale, DIST_CLIP) / DIST_CLIP` for its
  largest inscribed radius r), capped at 1: how high the model stands in the cell for its size.
Writes `bench/results/realdata_clipscore.json`: per model the pooled F1 / mSA / COCO mask AP of each variant, and per
variant the mean ± sd over models of its AP minus the product's.

    python bench/realdata_clipscore.py 'lc5-lolo_Huh7_ours[clip]_15min_1' ...   # kept models, about 30 s each (Usiigaci: 2 min)
    python bench/realdata_clipscore.py --report
"""
from __future__ import annotations
import sys
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
RESULTS = ROOT/'bench/results/realdata_clipscore.json'
VARIANTS = ('recorded', 'product', 'nodist', 'sqrtdist', 'fit')
from realdata_twopass import kept_model, paired_summary, screen_main
from realdata_seedh import clip_drawn   # the map the `clip` target draws at a model's scale

def shape_peak(labels:np.ndarray, scale:float) -> np.ndarray:
    "Per label 0..n: the `clip` peak its own shape gives, min(largest inscribed radius x scale, DIST_CLIP) / DIST_CLIP"
    from scipy import ndimage as ndi
    n = int(labels.max(initial=0))
    return np.asarray(ndi.maximum(clip_drawn(labels, scale), labels, np.arange(n + 1)), float) if n else np.zeros(1)

def rescored(labels, probs, pp, scale:float) -> dict:
    "Each variant's scores of `labels` 1..n from `probs` (the variants but `recorded`)"
    from scipy import ndimage as ndi
    import realdata as rd
    from cellseg_nb.postprocess import cell_table
    lab = labels.astype(np.int32); n = int(lab.max(initial=0)); dist = np.asarray(probs['dist'], np.float32)
    def sc(d): return rd.label_scores(lab, cell_table(lab, {**probs, 'dist': d}, **pp.table_args()))
    peak = np.asarray(ndi.maximum(dist, lab, np.arange(n + 1)), float) if n else np.zeros(1)
    ratio = np.minimum(peak / np.maximum(shape_peak(lab, scale), 1e-6), 1.0)
    return dict(product=sc(dist), nodist=sc(np.ones_like(dist)), sqrtdist=sc(np.sqrt(np.clip(dist, 0, None))),
                fit=sc(ratio[lab].astype(np.float32)))

def run_model(name:str) -> dict:
    import realdata as rd
    from cellseg_nb.infer import infer_maps, model_scale, model_params
    protocol, fold, model = kept_model(name); pp = model_params(model)
    items = rd.items_of(protocol, rd.folds(protocol)[fold][2]); d = np.load(rd.OUT/'preds'/f'{name}.npz')
    preds = {v: [] for v in VARIANTS}
    for i, (_, img, _) in enumerate(items):
        lab, rec = d[f'labels_{i}'], d[f'scores_{i}']
        with model_scale(model, rd.segment_scale(model, img, pp)):
            pr = infer_maps(model, img, progress=False).probs(); eff = float(model.scale)
        preds['recorded'].append((lab, rec))
        for v, s in rescored(lab, pr, pp, eff).items(): preds[v].append((lab, s))
    return dict(dist_target=model.config.get('dist_target', 'edt'),
                scores={v: {k: round(float(x), 4) for k, x in rd.score(items, p).items() if k in ('f1', 'msa', 'ap', 'n_pred')} for v, p in preds.items()})

def summary(runs:dict) -> dict:
    "Per variant: the mean ± sd over models of its F1 and AP minus `product`'s"
    return paired_summary(runs, VARIANTS, lambda r, v: r['scores'][v], 'product')

def main(argv=None):
    screen_main(argv, __doc__, RESULTS, run_model, summary, lambda r: ' '.join(f"{k} {v['f1']:.3f}/{v['ap']:.3f}" for k, v in r['scores'].items()))

if __name__ == '__main__': main()
