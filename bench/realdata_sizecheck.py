"""Size matching checked by a scan: `segment`'s `size_check`, on and off, paired, on the kept models' held-out images at several magnifications.

Size matching measures the cells on a first pass and resizes the image to the training size. Where the cells are much
larger than training's on an image as sharp as training's (a higher magnification of the same microscope, a larger
cell line) the first pass cuts them into pieces of training size and the size it measures says "no change"
(`bench/realdata_sizes.py`: F1 0.167 where the steadiest pass of a scan gives 0.527, cells enlarged 1.5x). With
`size_check` (the default since 2026-12-08) `segment` also segments the image at `CHECK_SCALES` (x the model's scale)
and keeps the size-matched pass unless a scanned size at most the model's scale agrees with its neighbouring sizes by
`STEADIER_BY` more than the scanned size nearest the matched one (`checked_pick`). The rule was chosen on the passes
`bench/realdata_sizes.py` recorded; this script measures the product itself: the held-out images of the kept LIVECell
models (`lc5-loio`, `lc5-lolo`; `bench/out/realdata/work`) given their fold's training sharpness range (the gate as
`cellseg train` records it), enlarged `ZOOMS` times (bilinear; labels nearest), segmented by `predict` with and
without the check, scored as `bench/realdata.py` scores (F1@0.5, mSA, COCO mask AP). Rows:
`bench/out/realdata_sizecheck/rows.jsonl` (one per model and zoom; a stopped run resumes); report:
`bench/results/realdata_sizecheck.json` (paired change, mean +- sd over models, per budget and zoom; seconds per image).

With `--unlabelled`, the other direction: LIVECell's 32 images without annotations (8 cell lines, 5 of them never
trained on) segmented by the kept 15-minute models trained on all 5 annotated images (`lc5-usiigaci`, the defaults:
`ours[scan]`, `ours[steady]`): per image whether the check replaced the size-matched pass, the two sizes, and the cells
each finds (number, median diameter); no truth to score, so also a figure of each replaced image's two segmentations
(`bench/out/realdata_sizecheck/unlabelled/`, not committed). Rows: `unlabelled.jsonl`; report under `unlabelled`.

    python bench/realdata_sizecheck.py --match 15min    # about 4 CPU-minutes per model
    python bench/realdata_sizecheck.py --unlabelled     # about 4 CPU-minutes per model
    python bench/realdata_sizecheck.py --report
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
OUT = ROOT/'bench/out/realdata_sizecheck'
RESULTS = ROOT/'bench/results/realdata_sizecheck.json'
ZOOMS = (0.67, 1.0, 1.5, 2.0)

from realdata import ms, items_of
from realdata_scan import read_rows, append_row, kept_runs, gated_model, product_scores

def scored(m, items, **kw) -> tuple:
    "`(scores, seconds per image)` of `items` segmented by `predict` with `kw`"
    t = time.perf_counter(); s = product_scores(m, items, **kw)[0]
    return s, round((time.perf_counter() - t) / len(items), 2)

def one(run:Path, z:float) -> dict:
    "One kept model's held-out images enlarged `z`x, segmented with and without the size check"
    import cv2
    from scipy import ndimage as ndi
    from cellseg_nb.infer import smoother_than_training
    key, m, rng, _, te = gated_model(run)
    items = [(n, img if z == 1 else cv2.resize(img, None, fx=z, fy=z, interpolation=cv2.INTER_LINEAR), lab if z == 1 else ndi.zoom(lab, z, order=0))
             for n, img, lab in items_of(key[0], te)]
    r = dict(run=run.name, **dict(zip(('protocol', 'fold', 'method', 'budget', 'seed'), key)), zoom=z, images=len(items),
             gated=[smoother_than_training(m, img) for _, img, _ in items])
    (r['checked'], r['sec_checked']), (r['unchecked'], r['sec_unchecked']) = scored(m, items), scored(m, items, size_check=False)
    return r

UNLABELLED_MODELS = ('[scan]_15min', '[steady]_15min')   # the kept lc5-usiigaci models trained with today's defaults

def unlabelled(run:Path) -> dict:
    "LIVECell's unannotated images segmented by one model trained on the 5 annotated ones: the checked and the size-matched choice, and a figure where they differ"
    import warnings
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries
    from realdata import shared, lc5_items
    from cellseg_nb.core import read_image, normalize_image
    from cellseg_nb.infer import (scan_passes, size_check_pick, second_pass_scale, smoother_than_training, model_params, segment,
                                  CHECK_SCALES, INFER_DEFAULTS)
    from cellseg_nb.data.targets import median_diameter
    key, m, rng, _, _ = gated_model(run); pp, s0 = model_params(m), m.scale
    known = {n for n, _, _ in lc5_items()}; figs = OUT/'unlabelled'; figs.mkdir(parents=True, exist_ok=True)
    r = dict(run=run.name, images=[])
    for p in sorted((shared()/'livecell-sample/images').rglob('*.tif')):
        if p.stem in known: continue
        img = read_image(p); t = time.perf_counter()
        if smoother_than_training(m, img): r['images'].append(dict(name=p.stem, line=p.stem.split('_')[0], gated=True)); continue
        with warnings.catch_warnings():
            warnings.simplefilter('ignore'); out = scan_passes(m, img, pp, CHECK_SCALES, **INFER_DEFAULTS)
            labs = [lab for lab, _ in out]; i, s = size_check_pick(m, labs); sm = second_pass_scale(m, labs[CHECK_SCALES.index(1.0)]) or s0
            matched = segment(m, img, size_check=False, **INFER_DEFAULTS)[0]   # size matching alone, at `sm`
        chosen = labs[i] if i is not None else matched
        info = lambda lab: dict(n=int(len(np.unique(lab)) - 1), d=round(float(median_diameter([lab])), 2) if lab.max() else 0.0)
        row = dict(name=p.stem, line=p.stem.split('_')[0], gated=False, matched_scale=round(sm / s0, 3), checked_scale=round((s if i is not None else sm) / s0, 3),
                   replaced=bool(i is not None and abs(np.log(s / sm)) > 1e-6), matched=info(matched), checked=info(chosen), seconds=round(time.perf_counter() - t, 1))
        r['images'].append(row)
        if row['replaced']:
            g = np.clip(normalize_image(img.astype(np.float32), 1, 99.8), 0, 1); fig, axs = plt.subplots(1, 2, figsize=(12, 4.6))
            for ax, lab, t_ in zip(axs, (matched, chosen), (f"size matching {row['matched_scale']}x: {row['matched']['n']} cells", f"checked {row['checked_scale']}x: {row['checked']['n']} cells")):
                rgb = np.dstack([g] * 3); rgb[find_boundaries(lab)] = (1, 0.2, 0.2); ax.imshow(rgb); ax.set_title(t_, fontsize=9); ax.axis('off')
            fig.suptitle(f'{p.stem} ({run.name})', fontsize=9); plt.tight_layout(); fig.savefig(figs/f'{run.name}_{p.stem}.png', dpi=80); plt.close(fig)
    return r

def unlabelled_report(rows:list) -> dict:
    "Per cell line: images, how many the check replaced (over the models), and the median sizes and cell counts each way"
    out = {}
    for im in (im for r in rows for im in r['images'] if not im['gated']):
        g = out.setdefault(im['line'], dict(images=0, replaced=0, matched_scale=[], checked_scale=[], n_matched=[], n_checked=[]))
        g['images'] += 1; g['replaced'] += im['replaced']
        for k, v in (('matched_scale', im['matched_scale']), ('checked_scale', im['checked_scale']), ('n_matched', im['matched']['n']), ('n_checked', im['checked']['n'])): g[k].append(v)
    return {l: {k: (float(np.median(v)) if isinstance(v, list) else v) for k, v in g.items()} for l, g in sorted(out.items())}

def report(rows:list) -> dict:
    "Per budget and zoom: models, images gated, each way's scores and the paired change (checked minus unchecked), mean +- sd over models"
    out = {}
    for b, z in sorted({(r['budget'], r['zoom']) for r in rows}):
        rs = [r for r in rows if r['budget'] == b and r['zoom'] == z]
        d = {k: [r['checked'][k] - r['unchecked'][k] for r in rs] for k in ('f1', 'ap')}
        out[f'{b} x{z}'] = dict(models=len(rs), images=sum(r['images'] for r in rs), gated=sum(sum(r['gated']) for r in rs),
                                **{f'{k}_{w}': ms([r[w][k] for r in rs]) for k in ('f1', 'ap') for w in ('unchecked', 'checked')},
                                **{f'gain_{k}': ms(v) for k, v in d.items()}, **{f'better_{k}': sum(x > 0.005 for x in v) for k, v in d.items()},
                                **{f'worse_{k}': sum(x < -0.005 for x in v) for k, v in d.items()},
                                sec_per_image=dict(unchecked=ms([r['sec_unchecked'] for r in rs]), checked=ms([r['sec_checked'] for r in rs])),
                                runs=[r['run'] for r in rs])
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--match', nargs='*', default=[], help='only work folders containing all of these')
    ap.add_argument('--zooms', nargs='*', type=float, default=list(ZOOMS))
    ap.add_argument('--unlabelled', action='store_true', help="LIVECell's unannotated images: where the check replaces the size-matched pass")
    ap.add_argument('--report', action='store_true')
    a = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True); f_rows, f_un = OUT/'rows.jsonl', OUT/'unlabelled.jsonl'
    rows, un = read_rows(f_rows), read_rows(f_un)
    if a.unlabelled:
        for run in [r for r in kept_runs('lc5-usiigaci_*_ours*') if any(k in r.name for k in UNLABELLED_MODELS)]:
            if any(r['run'] == run.name for r in un): continue
            r = unlabelled(run); un.append(r); append_row(f_un, r)
            print(f"{run.name}: replaced {sum(im.get('replaced', False) for im in r['images'])} of {len(r['images'])} images", flush=True)
    elif not a.report:
        for run in kept_runs('lc5-lo*_ours*', a.match):
            for z in a.zooms:
                if any(r['run'] == run.name and r['zoom'] == z for r in rows): continue
                r = one(run, z); rows.append(r); append_row(f_rows, r)
                print(f"{run.name} x{z}: F1 {r['unchecked']['f1']:.3f} -> {r['checked']['f1']:.3f}, AP {r['unchecked']['ap']:.3f} -> {r['checked']['ap']:.3f}, "
                      f"{r['sec_unchecked']} -> {r['sec_checked']} s/image", flush=True)
    rep = report(rows)
    RESULTS.write_text(json.dumps(dict(report=rep, zooms=list(ZOOMS), rows=rows, unlabelled=unlabelled_report(un), unlabelled_rows=un,
                                       when=time.strftime('%Y-%m-%d')), indent=1))
    for l, g in unlabelled_report(un).items(): print(f"{l}: replaced {g['replaced']} of {g['images']}, scale {g['matched_scale']} -> {g['checked_scale']}, cells {g['n_matched']} -> {g['n_checked']}")
    for k, g in rep.items():
        print(f"{k}: {g['models']} models, F1 {g['f1_unchecked']['mean']:.3f} -> {g['f1_checked']['mean']:.3f} ({g['gain_f1']['mean']:+.3f} +- {g['gain_f1']['sd']:.3f}, "
              f"{g['better_f1']}/{g['worse_f1']}), AP {g['gain_ap']['mean']:+.3f}, s/image {g['sec_per_image']['unchecked']['mean']:.1f} -> {g['sec_per_image']['checked']['mean']:.1f}")

if __name__ == '__main__': main()
