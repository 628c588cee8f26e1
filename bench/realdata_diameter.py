"""Is cell-size matching the bottleneck on leave-one-line-out Huh7? Re-segments the held-out images with the models that
`bench/realdata.py` kept (`bench/out/realdata/work/lc5-lolo_*_ours_dev_*`), at the model's own scale (`diameter=0`), with the
automatic two-pass matching (the default), and told the true median cell diameter (an oracle), x0.8 and x1.25 of it.
Prints F1@0.5 and cell counts per image and writes `bench/out/realdata_diameter.json`.

    python bench/realdata_diameter.py
"""
from __future__ import annotations
import json, sys
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))

def main():
    from realdata import lc5_items, folds, OUT
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.infer import segment
    from cellseg_nb.metrics import match_instances
    from cellseg_nb.data.targets import median_diameter
    items, rows = {n: (img, lab) for n, img, lab in lc5_items()}, []
    for run in sorted((OUT/'work').glob('lc5-lolo_*_ours_dev_*')):
        fold, seed = run.name.split('_')[1], int(run.name.split('_')[-1])
        m = load_model(run/'run/best')
        for n in folds('lc5-lolo')[fold][2]:
            img, gt = items[n]; d = median_diameter([gt]); r = dict(fold=fold, seed=seed, image=n, true_cells=int(len(np.unique(gt)) - 1),
                                                                     true_diameter=float(d), model_diameter=m.config.get('cell_diameter'))
            for tag, dia in (('model scale', 0), ('auto', None), ('true', d), ('true x0.8', 0.8 * d), ('true x1.25', 1.25 * d)):
                lab, _ = segment(m, img, diameter=dia)
                mm = match_instances(gt, lab, thresholds=(0.5,))
                r[tag] = dict(f1=float(2 * mm['tp'][0] / max(2 * mm['tp'][0] + mm['fp'][0] + mm['fn'][0], 1)), cells=int(mm['n_pred']))
            rows.append(r); print(json.dumps(r), flush=True)
    (ROOT/'bench/out/realdata_diameter.json').write_text(json.dumps(rows, indent=1))

if __name__ == '__main__': main()
