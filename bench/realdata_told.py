"""Told the cell size: which training recipe to use when the diameter of the cells to segment is known.

A Cellpose user passes the cells' diameter (`--diameter`), and `cellseg tune` stores one measured on annotated images.
The product's default training resizes all training images by one factor (their pooled median cell to 30 px), so the
model sees cells of every training image's own size; `size_each_image` resizes each training image to 30 px, as
Cellpose does, and then needs the test image's size, which its own first pass measures badly (held-out Huh7: 0.212
against the defaults' 0.482, `bench/realdata.py` row `ours[each-z50]`). This script scores the held-out images of kept
models of `bench/realdata.py` (`bench/out/realdata/work/<protocol>_<fold>_<method>_<budget>_<seed>/run/best`) three
ways, on the same model: `auto`, as `cellseg predict` without a diameter (the product); `told`, given each image's true
median cell diameter (`predict(..., diameter=)`, as `--diameter` and the `{"diameter": "true"}` ablation of
`bench/realdata.py`); and `train`, given the training images' mean median diameter for every image (what the
Cellpose peer predicts at: its `diam_labels`), a diameter that needs no annotation of the images segmented. Models of the two recipes trained on the same fold
and seed (`ours`, or its same-night `ours[control]`, and `ours[each...]`) are paired in the summary: per recipe, each
setting minus `auto`; and the `each` recipe's settings against the defaults'. Where `bench/realdata.py` has run Cellpose
told the true diameter on the same fold and seed (`cellpose[true-diameter]` in `bench/results/realdata.json`), each
recipe told is set against it too: both tools given the size, as a judge may give it.
Writes `bench/results/realdata_told.json`.

    python bench/realdata_told.py lc5-lolo_BT474_ours_15min_0 'lc5-lolo_BT474_ours[each-z50-true-diameter]_15min_0'
    python bench/realdata_told.py --report
"""
from __future__ import annotations
import json, re, sys
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
RESULTS = ROOT/'bench/results/realdata_told.json'
from realdata import ms
from realdata_twopass import kept_model, screen_main
SETTINGS = ('auto', 'told', 'train')

def run_model(name:str) -> dict:
    "Scores of one kept model's held-out images without a diameter, at their true ones, and at the training images' mean"
    import realdata as rd
    from cellseg_nb.predict import predict
    protocol, fold, model = kept_model(name)
    items = rd.items_of(protocol, rd.folds(protocol)[fold][2])
    told = rd.told_diameters({'diameter': 'true'}, items)
    tr = float(np.mean(rd.told_diameters({'diameter': 'true'}, rd.items_of(protocol, rd.folds(protocol)[fold][0]))))
    out = dict(true_diameters=[round(d, 1) for d in told], train_diameter=round(tr, 1), scores={})   # the recipe is in the name (`split_of`)
    for setting, ds in zip(SETTINGS, ([None] * len(items), told, [tr] * len(items))):
        preds = []
        for (_, img, _), d in zip(items, ds):
            lab, cells = predict(model, img, progress=False, diameter=d); preds.append((lab, rd.label_scores(lab, cells)))
        out['scores'][setting] = {k: round(float(v), 4) for k, v in rd.score(items, preds).items() if k in ('f1', 'msa', 'ap', 'n_pred', 'n_true')}
    return out

def split_of(name:str) -> tuple:
    "`(split, recipe)` of a kept model's name: the protocol, fold, budget and seed; and the recipe ('ours' for the defaults, also as a same-night `ours[control]`; 'each' for any `ours[each...]`)"
    m = re.fullmatch(r'(.+?)_(ours(?:\[[^\]]*\])?)_([^_]+)_(\d+)', name)
    if not m: raise ValueError(f"{name!r}: expected <protocol>_<fold>_<method>_<budget>_<seed>")
    return f'{m[1]} {m[3]} seed {m[4]}', 'each' if m[2].startswith('ours[each') else 'ours' if m[2] in ('ours', 'ours[control]') else m[2]

def cellpose_told(per_fold=None) -> dict:
    "`{split: {'f1', 'ap'}}` of Cellpose told each image's true diameter, split named as `split_of` names it (`per_fold`: realdata.json's)"
    if per_fold is None:
        import realdata as rd
        per_fold = json.loads(rd.RESULTS.read_text())['per_fold'] if rd.RESULTS.exists() else []
    return {f"{r['protocol']}_{r['fold']} {r['budget']} seed {s['seed']}": dict(f1=s['f1'], ap=s['ap'])
            for r in per_fold if r['method'] == 'cellpose[true-diameter]' for s in r.get('per_seed', [])}

def against(d:dict, splits) -> dict:
    "F1 and AP differences `d` ({'f1': [...], 'ap': [...]}, one per split): mean ± sd, wins and losses (beyond ±0.005 F1), the splits"
    return dict(**{m: ms(x) for m, x in d.items()}, wins=int(sum(x > 0.005 for x in d['f1'])), losses=int(sum(x < -0.005 for x in d['f1'])), splits=sorted(splits))

def summary(runs:dict, peer=None) -> dict:
    "Per recipe, each setting minus `auto` (mean ± sd over models); over the splits with both recipes, `each` against the defaults; each recipe told against Cellpose told (`peer`: `cellpose_told()`)"
    peer = cellpose_told() if peer is None else peer
    out, by, of = {}, {}, {n: split_of(n) for n in runs}
    for n, r in runs.items(): by.setdefault(of[n][0], {})[of[n][1]] = r['scores']
    for rec in sorted({rec for _, rec in of.values()}):
        rs = [r['scores'] for n, r in runs.items() if of[n][1] == rec]
        for st in SETTINGS[1:]: out[f'{rec}: {st} - auto'] = {m: ms([s[st][m] - s['auto'][m] for s in rs]) for m in ('f1', 'ap')}
    both = {k: v for k, v in by.items() if {'ours', 'each'} <= set(v)}
    for a, b in (('told', 'told'), ('told', 'auto'), ('train', 'auto'), ('auto', 'auto')):
        out[f'each {a} - defaults {b}'] = against({m: [v['each'][a][m] - v['ours'][b][m] for v in both.values()] for m in ('f1', 'ap')}, both)
    for rec, name in (('ours', 'defaults'), ('each', 'each')):
        sp = [k for k, v in by.items() if rec in v and k in peer]
        for which, ks in (('', sp), (' (LIVECell)', [k for k in sp if not k.startswith('lc5-usiigaci')])):   # and on the training microscope only
            if ks: out[f'{name} told - Cellpose told{which}'] = against({m: [by[k][rec]['told'][m] - peer[k][m] for k in ks] for m in ('f1', 'ap')}, ks)
    return out

def show(summ:dict) -> None:
    "Print the summary: one line per comparison"
    for k, v in summ.items():
        n = f" on {len(v['splits'])} splits (wins {v['wins']}, losses {v['losses']})" if 'splits' in v else f" over {v['f1']['n']} models"
        print(f"{k:>28}: F1 {v['f1']['mean']:+.3f} ± {v['f1']['sd']:.3f}, AP {v['ap']['mean']:+.3f}{n}")

def line(r:dict) -> str: return ' '.join(f"{k} {v['f1']:.3f}/{v['ap']:.3f} ({v['n_pred']} objects)" for k, v in r['scores'].items())

def main(argv=None):
    screen_main(argv, __doc__, RESULTS, run_model, summary, line, show)

if __name__ == '__main__': main()
