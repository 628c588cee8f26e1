"""Another microscope with a few annotated images: tune the seed height (and the cell size) on them, no retraining.

A user with a model trained elsewhere (here: on the 5 LIVECell images, the `lc5-usiigaci` protocol of
`bench/realdata.py`) and a handful of annotated images of their own microscope can pick post-processing settings on
those images instead of retraining. This measures what that is worth, with the tuning images kept apart from the
scored ones: tune on Usiigaci sets 36-40, score sets 41-45, paired on each kept model
(`bench/out/realdata/work/lc5-usiigaci_41-45_<method>_<budget>_<seed>`). Settings:
- `automatic`: the product's two-pass size matching (`segment`'s default), the seed height tuned on 36-40 (the first
  pass that measures the size keeps the model's height, as `bench/realdata_cross.py`; `segment(seed_h=)` uses it in both);
- `dataset-diameter`: every image resized as if its median cell diameter were the tuning images' median
  (`--diameter D`, one number for the microscope, measured on 36-40), the seed height tuned there too.
Each at the heights `HS`; the pick is the height with the best F1@0.5 pooled over the tuning images. Also records the
default height (0.05) and the best height on the scored images (an oracle). Writes `bench/results/realdata_tune.json`.

    python bench/realdata_tune.py --models 'ours_15min_0'          # about 15 CPU-minutes a model on 2 cores
    python bench/realdata_tune.py --models 'ours[centre]_dev_0' --settings dataset-diameter   # about 3
    python bench/realdata_tune.py --models lc5-lolo_Huh7_ours_dev_0 --settings dataset-diameter   # a model trained on 4 of the images
"""
from __future__ import annotations
import argparse, dataclasses, json, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
RESULTS = ROOT/'bench/results/realdata_tune.json'
HS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)   # seed peak heights; the default `PostprocessParams.seed_h` is 0.05
SETTINGS = ('automatic', 'dataset-diameter')
TUNE, TEST = [f'set{i}' for i in range(36, 41)], [f'set{i}' for i in range(41, 46)]

def counts(m, img, gt, scale) -> dict:
    "{'hs': {seed_h: {tp, fp, fn, cells}}} of one image segmented at `scale` (None: the product's two passes), as `realdata_seedh.one`"
    from cellseg_nb.infer import infer_maps, model_scale, labelled_cells, model_params, second_pass_scale, _segment
    from cellseg_nb.metrics import match_instances
    pp = model_params(m)
    if scale is None: scale = second_pass_scale(m, _segment(m, img, pp, 1024, 128, False)[0])
    with model_scale(m, scale): mp = infer_maps(m, img, progress=False)
    out = {}
    for h in HS:
        lab = labelled_cells(mp, dataclasses.replace(pp, seed_h=h))[0]
        mm = match_instances(gt, lab, thresholds=(0.5,))
        out[h] = dict(tp=int(mm['tp'][0]), fp=int(mm['fp'][0]), fn=int(mm['fn'][0]), cells=int(lab.max()))
    return dict(hs=out)

def pooled(rows, h) -> float:
    "F1@0.5 pooled over `rows` (of `counts`) at the height `h`"
    from realdata_seedh import pooled as at
    return at(rows, lambda r: h)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', nargs='+', default=['ours_15min_0'],
                    help="kept lc5-usiigaci models as <method>_<budget>_<seed>, or any kept LIVECell-5 model's folder, e.g. lc5-lolo_Huh7_ours_dev_0")
    ap.add_argument('--settings', nargs='+', default=list(SETTINGS), choices=SETTINGS, help='automatic: two passes at 1.5x, about 80 s an image')
    a = ap.parse_args(argv)
    import torch; torch.set_num_threads(2)
    import realdata as rd
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.infer import matched_scale
    from cellseg_nb.data.targets import median_diameter
    runs = {name: rd.OUT/'work'/(name if name.startswith('lc5-') else f'lc5-usiigaci_41-45_{name}')/'run/best' for name in a.models}
    for run in runs.values():
        if not run.exists(): sys.exit(f"{run} not found: train it with bench/realdata.py first (--folds lc5-usiigaci:41-45 for a <method>_<budget>_<seed> name)")
    tune, test = rd.items_of('usiigaci', TUNE), rd.items_of('usiigaci', TEST)
    d = median_diameter([g for _, _, g in tune])
    res = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    res.update(tuning_images=TUNE, scored_images=TEST, dataset_diameter=round(d, 1), heights=list(HS))
    for name in a.models:
        run = runs[name]; m = load_model(run); t0 = time.perf_counter(); r = {}
        for setting in a.settings:
            scale = None if setting == 'automatic' else matched_scale(m, d)
            tu = [counts(m, img, g, scale) for _, img, g in tune]
            te = [counts(m, img, g, scale) for _, img, g in test]
            pick = max(HS, key=lambda h: pooled(tu, h)); best = max(HS, key=lambda h: pooled(te, h))
            r[setting] = dict(tuned_h=pick, tuning_f1={h: round(pooled(tu, h), 4) for h in HS},
                              scored_f1={h: round(pooled(te, h), 4) for h in HS},
                              f1_default=round(pooled(te, 0.05), 4), f1_tuned=round(pooled(te, pick), 4),
                              oracle_h=best, f1_oracle=round(pooled(te, best), 4),
                              objects_tuned=sum(x['hs'][pick]['cells'] for x in te), cells=sum(x['hs'][pick]['tp'] + x['hs'][pick]['fn'] for x in te))
            print(name, setting, {k: v for k, v in r[setting].items() if not k.endswith('_f1')}, flush=True)
        res.setdefault('runs', {}).setdefault(name, {}).update(r, model=str(run.relative_to(ROOT)), minutes=round((time.perf_counter() - t0) / 60, 1),
                                                           when=time.strftime('%Y-%m-%d %H:%M'))
        RESULTS.write_text(json.dumps(res, indent=1))

if __name__ == '__main__': main()
