"""What the `dist` target can do at best: perfect maps of the real test images, seeded by the product's watershed.

For the Usiigaci test images (sets 41-45, 415 fibroblasts) and the 5 LIVECell images, `probs_from_labels` makes the
maps a perfect model would predict (blurred by 1 px), with each `dist` target of `make_targets` (`DIST_TARGETS`:
distance to the cell's edge, closeness to its centre, their mean), and `instances_from_probs` segments them at the default
thresholds and at the seed peak heights `HS`. A target with several peaks in one cell cuts it even when predicted
perfectly. Writes `bench/results/realdata_perfect.json` (objects found, F1@0.5, per target, data and `seed_h`).

    python bench/realdata_perfect.py      # about a minute on 2 cores
"""
from __future__ import annotations
import dataclasses, json, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
RESULTS = ROOT/'bench/results/realdata_perfect.json'
HS = (0.05, 0.2)   # seed peak heights: the default and a high one

def main():
    import realdata as rd
    from cellseg_nb.data.targets import DIST_TARGETS
    from cellseg_nb.postprocess import probs_from_labels, instances_from_probs, PostprocessParams
    from cellseg_nb.metrics import match_instances, object_scores
    data = {'usiigaci 41-45': rd.items_of('lc5-usiigaci', rd.folds('lc5-usiigaci')['41-45'][2]), 'livecell-5': rd.lc5_items()}
    rows = []
    for dname, items in data.items():
        for tgt in DIST_TARGETS:
            for h in HS:
                ms = [match_instances(lab, instances_from_probs(probs_from_labels(lab, blur=1, dist_target=tgt), PostprocessParams(seed_h=h))[0])
                      for _, _, lab in items]
                p = object_scores([None] * len(ms), ms)['summary']['pooled']
                rows.append(dict(data=dname, dist_target=tgt, seed_h=h, f1=round(p['f1@0.5'], 4),
                                 n_pred=int(sum(m['n_pred'] for m in ms)), n_true=int(sum(m['n_true'] for m in ms))))
                print(rows[-1], flush=True)
    RESULTS.write_text(json.dumps(dict(rows=rows, blur=1, when=time.strftime('%Y-%m-%d %H:%M')), indent=1))

if __name__ == '__main__': main()
