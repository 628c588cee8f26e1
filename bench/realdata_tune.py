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
default height (0.05) and the best height on the scored images (an oracle).
- `cellseg-tune`: what `cellseg tune` does (`cellseg_nb.tune.tune` on 36-40: the masks' median diameter, then a search
  of `grids()`), scored on 41-45 at that diameter with the chosen post-processing: `seed_h` searches the seed height
  alone, `full` also the foreground and boundary levels and the smoothing (`DEFAULT_GRID`), `wide` as `full` with
  foreground levels up to 0.9 (the product's default, `TUNE_GRID`).
Writes `bench/results/realdata_tune.json`.

    python bench/realdata_tune.py --models 'ours_15min_0'          # all settings: about 20 CPU-minutes a model on 2 cores
    python bench/realdata_tune.py --models 'ours[centre]_dev_0' --settings dataset-diameter   # about 3
    python bench/realdata_tune.py --models lc5-lolo_Huh7_ours_dev_0 --settings dataset-diameter   # a model trained on 4 of the images
    python bench/realdata_tune.py --models ours_15min_1 --settings cellseg-tune   # about 5
    python bench/realdata_tune.py --peer cellpose --seed 0   # the peer tuned the same way: trains it (15 min), about 25 in all

`--peer cellpose` trains Cellpose on LIVECell-5 as `realdata.py`'s lc5-usiigaci run does, then tunes it as a Cellpose user
would, on the same images as ours: the tuning images' median diameter, and the pair of its two thresholds
(`CP_PAIRS`) with the best pooled F1 on 36-40; recorded as `cellpose[tuned]_15min_<seed>`, with its untuned score
(the training masks' diameter, default thresholds) from the same model.
"""
from __future__ import annotations
import argparse, dataclasses, json, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
RESULTS = ROOT/'bench/results/realdata_tune.json'
HS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)   # seed peak heights; the default `PostprocessParams.seed_h` is 0.05
SETTINGS = ('automatic', 'dataset-diameter', 'cellseg-tune')
TUNE, TEST = [f'set{i}' for i in range(36, 41)], [f'set{i}' for i in range(41, 46)]

def match_counts(gt, lab) -> dict:
    "{tp, fp, fn, cells} of `lab` against `gt` at IoU 0.5"
    from cellseg_nb.metrics import match_instances
    mm = match_instances(gt, lab, thresholds=(0.5,))
    return dict(tp=int(mm['tp'][0]), fp=int(mm['fp'][0]), fn=int(mm['fn'][0]), cells=int(lab.max()))

def counts(m, img, gt, scale) -> dict:
    "{'hs': {seed_h: {tp, fp, fn, cells}}} of one image segmented at `scale` (None: the product's two passes), as `realdata_seedh.one`"
    from cellseg_nb.infer import infer_maps, model_scale, labelled_cells, model_params, second_pass_scale, _segment
    pp = model_params(m)
    if scale is None: scale = second_pass_scale(m, _segment(m, img, pp, 1024, 128, False)[0])
    with model_scale(m, scale): mp = infer_maps(m, img, progress=False)
    return dict(hs={h: match_counts(gt, labelled_cells(mp, dataclasses.replace(pp, seed_h=h))[0]) for h in HS})

def grids() -> dict:
    "The searches `cellseg-tune` compares: the seed height alone, the training-time search with it, and that with higher foreground levels (the product's `TUNE_GRID`)"
    from cellseg_nb.postprocess import DEFAULT_GRID
    from cellseg_nb.tune import TUNE_GRID
    return {'seed_h': {'seed_h': HS}, 'full': {**DEFAULT_GRID, 'seed_h': HS}, 'wide': TUNE_GRID}

def product(m, tune, test) -> dict:
    "`cellseg tune` on the images `tune` ((name, image, labels)), scored on `test`, with each of `grids()` (the maps computed once)"
    from cellseg_nb.data.sources import ArraySource
    from cellseg_nb.tune import tune as fit, tuning_maps
    from cellseg_nb.postprocess import pooled_score
    src = lambda items: ArraySource([i for _, i, _ in items], [g for _, _, g in items], names=[n for n, _, _ in items])
    tu = tuning_maps(m, src(tune), progress=False)
    te = tuning_maps(m, src(test), diameter=tu[2], progress=False)[:2]
    out = {}
    for name, grid in grids().items():
        t = fit(m, src(tune), grid=grid, progress=False, maps=tu)
        out[name] = dict(t.summary(), f1_default=round(pooled_score(*te, t.start), 4), f1_tuned=round(pooled_score(*te, t.params), 4))
        out[name].pop('when')
    return out

CP_PAIRS = dict(cellprob=[-2.0, -1.0, 0.0, 1.0], flow=[0.4, 0.8])   # Cellpose's two thresholds its docs tell users to adjust (defaults 0, 0.4)

def peer_cellpose(seed:int, budget:str='15min') -> dict:
    "Cellpose trained on LIVECell-5, then one diameter and its thresholds chosen on the tuning images, scored on the others"
    import subprocess, numpy as np, realdata as rd
    from realdata_seedh import pooled as at
    from cellseg_nb.data.targets import median_diameter
    tr = rd.folds('lc5-usiigaci')['41-45'][0]
    tune, test = rd.items_of('usiigaci', TUNE), rd.items_of('usiigaci', TEST)
    d = median_diameter([g for _, _, g in tune])
    work = rd.OUT/'work'/f'lc5-usiigaci_41-45_cellpose[tuned]_{budget}_{seed}'; work.mkdir(parents=True, exist_ok=True)
    arrs = {}
    for i, (_, img, lab) in enumerate(rd.items_of('lc5-usiigaci', tr)): arrs[f'train_{i}'] = img; arrs[f'mask_{i}'] = lab
    for i, (_, img, _) in enumerate(test): arrs[f'test_{i}'] = img
    for i, (_, img, _) in enumerate(tune): arrs[f'tune_{i}'] = img
    np.savez(work/'in.npz', **arrs)
    subprocess.run([str(rd.cellpose_python()), str(ROOT/'bench/peer_cellpose.py'), str(work/'in.npz'), str(work/'out.npz'),
                    '--minutes', str(rd.budget_minutes(budget)), '--seed', str(seed), '--tune', json.dumps(dict(diameter=d, **CP_PAIRS))], check=True)
    o = np.load(work/'out.npz'); info = json.loads(str(o['info'])); pairs = [tuple(p) for p in info['pairs']]
    rows = lambda tag, items: [dict(hs={k: match_counts(g, o[f'{tag}_{k}_{i}']) for k in range(len(pairs))}) for i, (_, _, g) in enumerate(items)]
    tu, te = rows('tlabels', tune), rows('labels', test)
    f1 = lambda rs, k: round(at(rs, lambda r: k), 4)
    pick, best, dflt = max(range(len(pairs)), key=lambda k: f1(tu, k)), max(range(len(pairs)), key=lambda k: f1(te, k)), pairs.index((0.0, 0.4))
    untuned = at([dict(hs={0: match_counts(g, o[f'labels_{i}'])}) for i, (_, _, g) in enumerate(test)], lambda r: 0)
    return {'cellpose-tune': dict(pairs=pairs, tuned_pair=pairs[pick], tuning_f1=[f1(tu, k) for k in range(len(pairs))], scored_f1=[f1(te, k) for k in range(len(pairs))],
                                  f1_untuned=round(untuned, 4), f1_default=f1(te, dflt), f1_tuned=f1(te, pick), oracle_pair=pairs[best], f1_oracle=f1(te, best),
                                  objects_tuned=sum(x['hs'][pick]['cells'] for x in te), cells=sum(x['hs'][pick]['tp'] + x['hs'][pick]['fn'] for x in te),
                                  tune_diameter=round(d, 2), training_diameter=info['diameter'],
                                  **{k: info[k] for k in ('steps', 'train_s', 'budget_used', 'default_pair_as_eval')})}

def record(name:str, r:dict, **extra):
    "Merge one model's results into `RESULTS`, read again just before writing (another run may have written since)"
    res = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    res.update(tuning_images=TUNE, scored_images=TEST, heights=list(HS))
    res.setdefault('runs', {}).setdefault(name, {}).update(r, **extra, when=time.strftime('%Y-%m-%d %H:%M'))
    RESULTS.write_text(json.dumps(res, indent=1))

def pooled(rows, h) -> float:
    "F1@0.5 pooled over `rows` (of `counts`) at the height `h`"
    from realdata_seedh import pooled as at
    return at(rows, lambda r: h)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', nargs='+', default=['ours_15min_0'],
                    help="kept lc5-usiigaci models as <method>_<budget>_<seed>, or any kept LIVECell-5 model's folder, e.g. lc5-lolo_Huh7_ours_dev_0")
    ap.add_argument('--settings', nargs='+', default=list(SETTINGS), choices=SETTINGS, help='automatic: two passes at 1.5x, about 80 s an image; cellseg-tune: the product command, three searches')
    ap.add_argument('--peer', choices=['cellpose'], help='train the peer and tune it on the same images instead (--seed)')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    if a.peer:
        r = peer_cellpose(a.seed); print(r, flush=True)
        return record(f'cellpose[tuned]_15min_{a.seed}', r)
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
    for name in a.models:
        run = runs[name]; m = load_model(run); t0 = time.perf_counter(); r = {}
        for setting in a.settings:
            if setting == 'cellseg-tune':
                r[setting] = product(m, tune, test); print(name, setting, r[setting], flush=True); continue
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
        record(name, r, model=str(run.relative_to(ROOT)), dataset_diameter=round(d, 1), minutes=round((time.perf_counter() - t0) / 60, 1))

if __name__ == '__main__': main()
