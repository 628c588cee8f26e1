"""Half-way test-time BatchNorm: the image's statistics blended with training's, paired on the kept models.

`bench/realdata_twopass.py`'s `adabn` (each pass's BatchNorm statistics re-estimated on the image itself) wins on
every 15-minute BT474 model of the defaults and breaks every Huh7 and MCF7 model. Schneider et al. (2020, "Improving
robustness against common corruptions by covariate shift adaptation") blend the two instead: mean and variance
`a * image's + (1 - a) * training's`, `a` set by how many images one trusts. This script scores the product's two
passes with each pass's statistics blended at `BLENDS` (0: the product; 1: `adabn`) on the held-out images of the
models `bench/realdata.py` kept (`bench/out/realdata/work/<protocol>_<fold>_<method>_<budget>_<seed>/run/best`).
Writes `bench/results/realdata_adabn.json`: per model F1@0.5 / mSA / COCO mask AP at every blend, and per blend the
mean ± sd over models of its difference to the product.

    python bench/realdata_adabn.py                       # every kept LIVECell `ours` model, about 1 CPU-minute each
    python bench/realdata_adabn.py lc5-lolo_BT474_ours_15min_0   # named kept models
    python bench/realdata_adabn.py --report                # the summary again from the models measured
"""
from __future__ import annotations
import copy, sys
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
RESULTS = ROOT/'bench/results/realdata_adabn.json'
BLENDS = (0.0, 0.25, 0.5, 1.0)   # the image's share of each BatchNorm statistic; 0: the product, 1: AdaBN
from realdata_twopass import adapted, batchnorms, kept_model, paired_summary, screen_main

def blended(model, image_model, a:float):
    "A copy of `model` whose BatchNorm means and variances are `a` * `image_model`'s + (1 - `a`) * its own"
    m = copy.deepcopy(model).eval()
    for b, x in zip(batchnorms(m), batchnorms(image_model)):
        b.running_mean.mul_(1 - a).add_(a * x.running_mean); b.running_var.mul_(1 - a).add_(a * x.running_var)
    return m

def run_model(name:str) -> dict:
    import realdata as rd
    from cellseg_nb.infer import infer_maps, model_scale, labelled_cells, model_params, second_pass_scale
    protocol, fold, model = kept_model(name); s0, pp = model.scale, model_params(model)
    items = rd.items_of(protocol, rd.folds(protocol)[fold][2]); preds = {a: [] for a in BLENDS}
    for _, img, _ in items:
        own = {}   # the image's own statistics at each scale, estimated once
        def seg(a, scale):
            if a and scale not in own: own[scale] = adapted(model, img, scale)
            m = blended(model, own[scale], a) if a else model
            with model_scale(m, scale): lab, cells = labelled_cells(infer_maps(m, img, tta='flips', progress=False).probs(), pp)
            return lab, rd.label_scores(lab, cells)
        for a in BLENDS:
            first = seg(a, s0); s2 = second_pass_scale(model, first[0])
            preds[a].append(first if s2 is None else seg(a, s2))
    return dict(scores={str(a): {k: round(float(v), 4) for k, v in rd.score(items, p).items() if k in ('f1', 'msa', 'ap', 'n_pred')}
                        for a, p in preds.items()})

def summary(runs:dict) -> dict:
    "Per blend: mean ± sd over models of its F1 and AP minus the product's (blend 0), wins and losses"
    return paired_summary(runs, tuple(str(b) for b in BLENDS[1:]), lambda r, b: r['scores'][b], str(BLENDS[0]))

def main(argv=None):
    screen_main(argv, __doc__, RESULTS, run_model, summary, lambda r: ' '.join(f"{b}:{v['f1']:.3f}/{v['ap']:.3f}" for b, v in r['scores'].items()))

if __name__ == '__main__': main()
