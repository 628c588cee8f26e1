"""Post-processing variants on the same trained models (paired): which seeds, which thresholds, tuned on what.

Training noise between two runs is larger than most post-processing effects, so this script re-uses the models that
`bench/realdata.py` trained (`bench/out/realdata/work/*/run/best`) and post-processes each one's maps of its held-out
images every way at once. Thresholds that are tuned are tuned on the fold's training images (up to `MAX_TUNE_TRAIN`),
as `cellseg train` does when it has no validation images. Variants:
- `before`: seeds = regions of dist above a level (`seed_h=0`, level 0.5, smoothing 1 px), level/foreground/boundary
  thresholds tuned on the training images (the product before h-maxima seeds);
- `after`: the product now: h-maxima seeds with the defaults, only the foreground level tuned on the training images
  (`TRAIN_IMAGE_GRID`);
- `after-tune-all`: the defaults, then the whole `DEFAULT_GRID` (seed_h, smoothing, ...) tuned on the training images;
- `h=0.03`, `h=0.1`: other fixed peak heights; `after+flips`: `after` on maps averaged over 4 flips (the product's default
  test-time augmentation);
- `after+flips+size`: `after+flips`, each image segmented again resized so its median cell diameter, measured on a
  first pass, matches the training median (as Cellpose's size model);
- `after+flips+matched`: `cellseg_nb.infer.segment`'s default (`PRODUCT`): as `after+flips+size` for a model trained on
  fewer than 10 images; with more, only images whose measured size lies outside the range of the training images' own
  median sizes are resized, to the nearest edge of that range;
- `matched,h=H`: `PRODUCT` with another fixed peak height `seed_h` (the default is 0.05);
- `matched,fg=T`: `PRODUCT` with a fixed foreground level `fg_threshold` instead of the one tuned on the training images;
- `matched+verify`: `PRODUCT`, but the second pass is kept only if it moved the cells' measured size (in the model's
  pixels) at least half way (in log) to the size it aimed at; otherwise the first pass stands (`VERIFY_FRACTION`).
  The premise: resizing scales real cells with the image, so a true size mismatch should land near the aim, and a
  first pass that measured merged clusters (too large) or cut cells (too small) should not. Measured, it does not
  hold: the size moved 3-61% of the way on every leave-one-line-out image, whether or not the resize helped;
- `matched,convex`: `PRODUCT`, but the first pass measures the median diameter of its convex cells only (solidity
  >= `CONVEX_SOLIDITY`; all cells if fewer than `MIN_CELLS_TO_MEASURE` are), meant to leave merged neighbours out
  (measured: the convex cells are mostly the small pieces of cut cells);
- `matched,img-median`: `PRODUCT`, matching the median of the training images' own median sizes (each image counts
  once) instead of the median over all their cells (which the densest training image dominates);
- `matched,range`: `PRODUCT` with the range rule whatever the number of training images: only an image whose measured
  size lies outside the smallest..largest of the training images' own median sizes is resized, to the nearest edge;
- `matched,line`: `PRODUCT`, matching the median size of the training images of the cell line the first pass calls
  the image (the commonest type of its cells), or the usual median when no training image is of that line;
- `matched,native-first`: `PRODUCT`, but the first pass that measures the cells runs at the image's own size (scale 1)
  instead of the model's scale (LIVECell-trained: about 1.6x). Aimed at another microscope's larger cells, which the
  first pass at 1.6x cuts into training-sized pieces (`bench/realdata_cross.py`); the second pass is the product's
  (the measured size matched, within 2x of the model's scale);
- `matched,auto-h` (`AUTO_H`): `PRODUCT`, then each image's peak height chosen from `AUTO_SEED_HS` by how well its cells
  explain its dist map (`seed_h='auto'`, `cellseg_nb.postprocess.choose_seed_h`), in both passes: the option
  `--seed-h auto` (not the default);
- `matched,sep0` and `matched,sep1`: `PRODUCT` with each cell's score multiplied by its separation from its least separated
  neighbour to the power 0 (off: the product before) or 1, instead of the default 0.5 (the labels are the same, so
  only the AP can change).
A model trained before models recorded their cell sizes gets the ones training records now (its scale times the
training images' median cell diameter; with 10 images or more, the 10th-90th percentiles of their per-image medians).
Scores as `bench/realdata.py` (F1@0.5, mSA, COCO mask AP), per fold and pooled over a protocol's test images.

    python bench/realdata_postprocess.py --method 'ours[r1]' --budget dev --seed 0
    python bench/realdata_postprocess.py --method ours --budget 15min --seed 0   # adds to the same results file
    python bench/realdata_postprocess.py --method 'ours[r1]' --as-ours   # also: `PRODUCT` becomes the `ours` row of realdata.py

`--as-ours` records the `PRODUCT` variant of each model as the `ours` run of `bench/realdata.py` (same fold, budget and
seed; `trained_as` names the run whose trained model it post-processed), so the main table shows the product as it
is now without training again when only the post-processing changed.
"""
from __future__ import annotations
import argparse, json, sys, time
from dataclasses import asdict, replace
from pathlib import Path
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realdata as R

RESULTS = R.OUT/'realdata_postprocess.json' if R.SMOKE else R.ROOT/'bench/results/realdata_postprocess.json'
PRODUCT = 'after+flips+matched'  # what `cellseg train` + `cellseg predict` do now
AUTO_H = 'matched,auto-h'  # `PRODUCT` with `seed_h='auto'`: the option `--seed-h auto`
VERIFY_FRACTION = 0.5  # `matched+verify`: the second pass must leave at most this fraction of the first pass's log size error
CONVEX_SOLIDITY = 0.9  # `matched,convex`: cells at least this convex (area / convex hull area) measure the size

def convex_cells(labels):
    "`labels` with only the cells of solidity >= `CONVEX_SOLIDITY` (all of them if fewer than `MIN_CELLS_TO_MEASURE` are)"
    from skimage.measure import regionprops
    from cellseg_nb.infer import MIN_CELLS_TO_MEASURE
    keep = [r.label for r in regionprops(labels) if r.solidity >= CONVEX_SOLIDITY]
    return np.where(np.isin(labels, keep), labels, 0) if len(keep) >= MIN_CELLS_TO_MEASURE else labels

def checked_segment(model, img, pp, tta, mode='verify'):
    "`PRODUCT`'s two passes as `mode` changes them (`verify`, `convex`: see the variants): `(labels, cells, what the passes measured)`"
    import math
    from cellseg_nb.infer import segment, second_pass_scale, model_scale
    from cellseg_nb.data.targets import median_diameter
    s0 = model.scale; first = segment(model, img, pp, tta=tta, diameter=0)
    s = second_pass_scale(model, convex_cells(first[0]) if mode == 'convex' else first[0])
    if s is None: return (*first, dict(s0=s0, s=None))
    with model_scale(model, s): second = segment(model, img, pp, tta=tta, diameter=0)
    info = dict(s0=round(s0, 4), s=round(s, 4))
    if mode == 'convex': return (*second, info)
    d1, d2 = median_diameter([first[0]]) * s0, median_diameter([second[0]]) * s   # the cells as the model saw them in each pass
    aim = d1 * s / s0   # the size the second pass aimed at (`matched_scale`: the nearest edge of the training range)
    e1, e2 = math.log(d1 / aim), math.log(d2 / aim)
    keep = abs(e2) <= VERIFY_FRACTION * abs(e1)
    return (*(second if keep else first), dict(info, d1_edge=round(d1 / aim, 3), d2_edge=round(d2 / aim, 3), kept=keep))

def line_segment(model, img, pp, tta, per_line:dict):
    "`PRODUCT` matching the size of the training images of the line the first pass calls the image (its cells' commonest type), else the median"
    from cellseg_nb.infer import segment
    first = segment(model, img, pp, tta=tta, diameter=0)
    line = str(first[1]['cell_type'].mode()[0]) if len(first[1]) else None
    tgt = model.config['cell_diameter']; model.config['cell_diameter'] = per_line.get(line, tgt)
    try: return (*segment(model, img, pp, tta=tta), dict(line=line, target=model.config['cell_diameter']))
    finally: model.config['cell_diameter'] = tgt

def native_first_segment(model, img, pp, tta):
    "`PRODUCT` with the first pass at the image's own size: `(labels, cells, what the passes measured)`"
    from cellseg_nb.infer import segment, matched_scale, model_scale
    from cellseg_nb.data.targets import median_diameter
    with model_scale(model, 1.0): first = segment(model, img, pp, tta=tta, diameter=0)
    s = matched_scale(model, None, first[0]) or model.scale   # None: a size training saw, at the model's own scale
    with model_scale(model, s): second = segment(model, img, pp, tta=tta, diameter=0)
    return (*second, dict(first_d=round(float(median_diameter([first[0]])), 2) if first[0].any() else None, s=round(s, 4)))

def variants():
    "{name: (base PostprocessParams, grid tuned on the training images or None, tta)}"
    from cellseg_nb.postprocess import PostprocessParams as P, DEFAULT_GRID, TRAIN_IMAGE_GRID
    old_grid = {'seed_threshold': (0.3, 0.4, 0.5, 0.6, 0.7, 0.8), 'fg_threshold': (0.3, 0.4, 0.5, 0.6, 0.7),
                'boundary_threshold': (0.3, 0.5, 0.7, 0.9)}
    return {'before': (P(seed_h=0.0, seed_threshold=0.5, smooth=1.0), old_grid, False),
            'after': (P(), TRAIN_IMAGE_GRID, False), 'after-tune-all': (P(), DEFAULT_GRID, False),
            'h=0.03': (P(seed_h=0.03), TRAIN_IMAGE_GRID, False), 'h=0.1': (P(seed_h=0.1), TRAIN_IMAGE_GRID, False),
            'after+flips': (P(), TRAIN_IMAGE_GRID, 'flips'), 'after+flips+size': (P(), TRAIN_IMAGE_GRID, 'flips', 'size'),
            'after+flips+matched': (P(), TRAIN_IMAGE_GRID, 'flips', 'matched'),
            'matched+verify': (P(), TRAIN_IMAGE_GRID, 'flips', 'verify'), 'matched,convex': (P(), TRAIN_IMAGE_GRID, 'flips', 'convex'),
            'matched,sep0': (P(separation_power=0.0), TRAIN_IMAGE_GRID, 'flips', 'matched'),
            'matched,sep1': (P(separation_power=1.0), TRAIN_IMAGE_GRID, 'flips', 'matched'),
            **{f'matched,h={h}': (P(seed_h=h), TRAIN_IMAGE_GRID, 'flips', 'matched') for h in (0.03, 0.075, 0.1, 0.15)},
            **{f'matched,fg={t}': (P(fg_threshold=t), None, 'flips', 'matched') for t in (0.3, 0.4, 0.5, 0.6)},
            'matched,img-median': (P(), TRAIN_IMAGE_GRID, 'flips', 'img-median'), 'matched,range': (P(), TRAIN_IMAGE_GRID, 'flips', 'range'),
            'matched,line': (P(), TRAIN_IMAGE_GRID, 'flips', 'line'), 'matched,native-first': (P(), TRAIN_IMAGE_GRID, 'flips', 'native-first'),
            AUTO_H: (P(), TRAIN_IMAGE_GRID, 'flips', 'matched')}   # its height set to 'auto' after the foreground level is tuned

def fold_preds(protocol, fold, method, budget, seed, only=None):
    "{variant: ([(labels, scores)] of the fold's test images, tuned params)} for one trained model (`only`: these variants)"
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.infer import infer_maps, segment
    from cellseg_nb.postprocess import instances_from_probs, tune_thresholds, AUTO
    from cellseg_nb.train import MAX_TUNE_TRAIN
    model = load_model(R.OUT/'work'/f'{protocol}_{fold}_{method}_{budget}_{seed}'/'run'/'best')
    tr, _, te = R.folds(protocol)[fold]
    trall, tei = R.items_of(protocol, tr), R.items_of(protocol, te); tri = trall[:MAX_TUNE_TRAIN]
    from cellseg_nb.data.sources import ArraySource
    from cellseg_nb.train import cell_sizes, MIN_IMAGES_SIZE_RANGE
    d, per = cell_sizes(ArraySource([img for _, img, _ in trall], [l for *_, l in trall]))   # the training images' cell sizes, as `train` measures them
    if not model.config.get('cell_diameter'):  # trained before models recorded their cell sizes: the sizes training records now
        model.config.update(cell_diameter=round(model.scale * d, 2), cell_diameter_range=[round(model.scale * x, 2) for x in np.percentile(per, (10, 90))]
                            if len(per) >= MIN_IMAGES_SIZE_RANGE else None)
    per = [x * model.scale for x in per]   # each training image's own median size, as the model saw it
    per_image_range, img_median = [round(min(per), 2), round(max(per), 2)], round(float(np.median(per)), 2)
    per_line = {}
    for n, x in zip([n for n, _, l in trall if l.any()], per): per_line.setdefault(n.split('_')[0], []).append(x)
    per_line = {k: float(np.median(v)) for k, v in per_line.items()}
    maps = {}
    def probs(items, tta):
        if (id(items), tta) not in maps: maps[id(items), tta] = [infer_maps(model, img, tta=tta, progress=False).probs() for _, img, _ in items]
        return maps[id(items), tta]
    out = {}
    for name, (base, grid, tta, *size) in variants().items():
        if only is not None and name not in only: continue
        pp = tune_thresholds(probs(tri, tta), [l for *_, l in tri], grid=grid, base=base, progress=False)[0] if grid else base
        if name == AUTO_H: pp = replace(pp, seed_h=AUTO)
        rng, tgt = model.config['cell_diameter_range'], model.config['cell_diameter']
        model.config['cell_diameter_range'] = None if size in (['size'], ['img-median']) else per_image_range if size == ['range'] else rng  # 'size': match the median
        if size == ['img-median']: model.config['cell_diameter'] = img_median
        checked = size in (['verify'], ['convex'])
        pairs = ([line_segment(model, img, pp, tta, per_line) for _, img, _ in tei] if size == ['line'] else
                 [native_first_segment(model, img, pp, tta) for _, img, _ in tei] if size == ['native-first'] else
                 [checked_segment(model, img, pp, tta, size[0]) for _, img, _ in tei] if checked else
                 [segment(model, img, pp, tta=tta) for _, img, _ in tei] if size else   # first pass, then at the matched size
                 [instances_from_probs(p, pp) for p in probs(tei, tta)])
        model.config['cell_diameter_range'], model.config['cell_diameter'] = rng, tgt
        preds = [(lab, R.label_scores(lab, cells)) for lab, cells, *_ in pairs]
        out[name] = (preds, {**asdict(pp), **({'passes': [p[2] for p in pairs]} if checked or size in (['line'], ['native-first']) else {})})
    return out

def as_ours(protocol, fold, method, budget, seed, preds, pp):
    "Record `preds` (the `PRODUCT` variant) as realdata.py's `ours` run of this fold, budget and seed"
    src = R.done_runs()[(protocol, fold, method, budget, seed)]
    items = R.items_of(protocol, R.folds(protocol)[fold][2])
    R.record_run(dict(protocol=protocol, fold=fold, method='ours', budget=budget, seed=seed, overrides={}, **R.score(items, preds),
                      **{k: src.get(k) for k in ('steps', 'train_s', 's_per_step', 'stop_reason', 'mixed_precision', 'budget_used')},
                      wall_s=src['wall_s'], device=src.get('device') or 'cpu',
                      test=[n for n, *_ in items], when=time.strftime('%Y-%m-%d %H:%M'), trained_as=method, variant=PRODUCT, tuned=pp),
                 preds)

def cached_fold(protocol, fold, method, budget, seed, only=None):
    "`fold_preds` (`only`: these variants), computed once and kept in bench/out/realdata/pp/ (so runs resume and pool across calls)"
    f, n = R.OUT/'pp'/f'{protocol}_{fold}_{method}_{budget}_{seed}.npz', len(R.folds(protocol)[fold][2])
    have = {}
    if f.exists():
        d = np.load(f); have = {v: ([(d[f'{v}|labels_{i}'], d[f'{v}|scores_{i}']) for i in range(n)], pp) for v, pp in json.loads(str(d['params'])).items()}
    want = [v for v in variants() if only is None or v in only]
    if missing := [v for v in want if v not in have]:   # a variant added since: only it is computed
        have.update(fold_preds(protocol, fold, method, budget, seed, only=missing)); f.parent.mkdir(parents=True, exist_ok=True)
        arrs = {f'{v}|{k}_{i}': x for v, (preds, _) in have.items() for i, (l, sc) in enumerate(preds) for k, x in (('labels', l), ('scores', sc))}
        np.savez_compressed(f, params=json.dumps({v: pp for v, (_, pp) in have.items()}), **arrs)
    return {v: have[v] for v in want}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--method', default='ours', help="the trained runs' method name in bench/out/realdata (e.g. 'ours[r1]')")
    ap.add_argument('--budget', default='dev', help="the trained runs' budget: dev, 15min or 15min-2lanes")
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--protocols', nargs='+', default=['lc5-loio', 'lc5-lolo'])
    ap.add_argument('--variants', nargs='+', choices=list(variants()), help='only these variants (default: all)')
    ap.add_argument('--as-ours', action='store_true', help="record `PRODUCT` as realdata.py's `ours` run of each fold")
    a = ap.parse_args(argv)
    res = json.loads(RESULTS.read_text()) if RESULTS.exists() else dict(per_fold=[], pooled=[])
    res['protocol'] = __doc__.split('\n\n')[1]
    have = {p: [f for f in R.folds(p) if (R.OUT/'work'/f'{p}_{f}_{a.method}_{a.budget}_{a.seed}'/'run'/'best').exists()] for p in a.protocols}
    def keep(r):   # rows this call does not redo: other runs, variants, or folds whose model is gone
        same = (r['method'], r['budget'], r['seed']) == (a.method, a.budget, a.seed) and r['protocol'] in a.protocols
        redo = a.variants is None or r['variant'] in a.variants
        return not (same and redo and set(r.get('folds', [r.get('fold')])) <= set(have[r['protocol']]))
    res['per_fold'] = [r for r in res['per_fold'] if keep(r)]; res['pooled'] = [r for r in res['pooled'] if keep(r)]
    for p in a.protocols:
        fl = have[p]
        pooled = {}
        for f in fl:
            t0 = time.perf_counter(); items = R.items_of(p, R.folds(p)[f][2])
            for name, (preds, pp) in cached_fold(p, f, a.method, a.budget, a.seed, a.variants).items():
                prev = R.done_runs().get((p, f, 'ours', a.budget, a.seed), {})
                if name == PRODUCT and a.as_ours and (prev.get('trained_as'), prev.get('variant')) != (a.method, PRODUCT):
                    as_ours(p, f, a.method, a.budget, a.seed, preds, pp)
                s = R.score(items, preds); pooled.setdefault(name, ([], []))
                pooled[name][0].extend(items); pooled[name][1].extend(preds)
                res['per_fold'].append(dict(protocol=p, fold=f, method=a.method, budget=a.budget, seed=a.seed, variant=name, params=pp, **s))
                print(f"{p}:{f:<8} {name:>15}: F1 {s['f1']:.3f} mSA {s['msa']:.3f} AP {s['ap']:.3f} (P {s['precision']:.2f} R {s['recall']:.2f})", flush=True)
            print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
        for name, (items, preds) in pooled.items():
            s = R.score(items, preds)
            res['pooled'].append(dict(protocol=p, folds=fl, complete=len(fl) == len(R.folds(p)), method=a.method, budget=a.budget,
                                      seed=a.seed, variant=name, **s))
            print(f"{p} pooled over {len(fl)} folds {name:>15}: F1 {s['f1']:.3f} mSA {s['msa']:.3f} AP {s['ap']:.3f}", flush=True)
    res['when'] = time.strftime('%Y-%m-%d %H:%M')
    RESULTS.write_text(json.dumps(res, indent=1))

if __name__ == '__main__': main()
