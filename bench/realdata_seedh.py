"""The seeds' peak height on real images: is one `seed_h` right for every cell line, and can the maps tell which?

Cells are seeded at the h-maxima of the smoothed distance map: a lower `seed_h` splits more, a higher one merges more.
This re-segments the held-out images of the kept models of `bench/realdata.py` (`bench/out/realdata/work/*_ours_*`)
as `cellseg_nb.infer.segment` does (two-pass size matching, flips at test time, the model's tuned thresholds), at the
peak heights `HS`, and records per image and height the matches (F1@0.5) and candidate signals that need no ground
truth (`CRITERIA`: the boundary map's agreement with the cell-cell contacts, the cells' separation, and `dist_fit`: how
well the cells explain the dist map, which the option `seed_h='auto'` uses; `clip_fit`, for models of the `clip`
target: the same against the map that target draws, the distance to the edge in the model's pixels capped at
`DIST_CLIP`), and, as the smp peer seeds its cells, seeds by level (`seed_h` 0, `LEVELS`). `--report` writes
`bench/results/realdata_seedh.json`: per model group, pooled F1 at each fixed height and level, at the model's own
(tuned) height, at the best height per image (the oracle) and at the height each criterion picks. Each finished image is appended to
`bench/out/realdata_seedh/runs.jsonl`, so a stopped run resumes.

    python bench/realdata_seedh.py     # about 15 s per held-out image and model on 2 cores
    python bench/realdata_seedh.py --method 'ours[centre]' --match lc5-lolo _dev_   # an ablation's models, some of them
    python bench/realdata_seedh.py --report
"""
from __future__ import annotations
import argparse, dataclasses, json, sys, time
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
OUT = ROOT/'bench/out/realdata_seedh'
RESULTS = ROOT/'bench/results/realdata_seedh.json'
HS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4)   # peak heights; the default `PostprocessParams.seed_h` is 0.05 (0.01 added 2026-12-06, 0.3 and 0.4 2026-12-07: older images lack them)
LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5)   # seeds by level instead (`seed_h` = 0, these `seed_threshold`s), as the smp peer seeds its cells (2026-12-07)
CRITERIA = ('contact_f', 'sep_area', 'dist_fit', 'clip_fit')   # picked height: the arg-max (clip_fit: models of the `clip` dist target only)

from realdata import ms, segment_scale   # the benches' one pooling, and `segment`'s scale
from realdata_diameter import sep_area
from cellseg_nb.postprocess import dist_fit, _flooding   # the product's choice of height (`seed_h='auto'`)

def contact_signals(lab, bd, fg) -> dict:
    "How the cell-cell contacts of `lab` agree with the boundary map `bd` away from the background (soft precision, recall, F)"
    from scipy import ndimage as ndi
    from cellseg_nb.data.targets import instance_edges
    inner = ndi.binary_erosion(fg, iterations=2)   # the cell-background edge is the same at every height: left out
    c = instance_edges(lab) & inner; b = bd * inner
    p = float(bd[c].mean()) if c.any() else 1.0
    r = float(b[ndi.binary_dilation(c) & inner].sum() / max(b.sum(), 1e-6))
    return dict(contact_p=p, contact_r=r, contact_f=2 * p * r / max(p + r, 1e-9))

def clip_drawn(lab, scale:float) -> np.ndarray:
    "The `clip` target of `lab` as a model at resize factor `scale` draws it: min(distance to the cell's edge x scale, DIST_CLIP) / DIST_CLIP"
    from cellseg_nb.data.targets import _edge_distance, instance_edges, DIST_CLIP, _compact_ids
    l, _ = _compact_ids(lab)
    return np.minimum(_edge_distance(l, instance_edges(l)) * scale, DIST_CLIP) / DIST_CLIP

def clip_fit(lab, dist, mask, scale:float) -> float:
    "`dist_fit` for the `clip` target: minus the mean |dist - `clip_drawn(lab, scale)`| over `mask`"
    if not mask.any(): return 0.0
    return -float(np.abs(np.asarray(dist, np.float32) - clip_drawn(lab, scale))[mask].mean())

def matches(gt, lab) -> dict:
    "True and false positives and false negatives of `lab` against `gt` at IoU 0.5, and its number of cells"
    from cellseg_nb.metrics import match_instances
    mm = match_instances(gt, lab, thresholds=(0.5,))
    return dict(tp=int(mm['tp'][0]), fp=int(mm['fp'][0]), fn=int(mm['fn'][0]), cells=int(lab.max()))

def one(run:Path, name:str, img, gt) -> dict:
    "Matches and signals of one held-out image at every height in `HS`, on the maps `segment` would use"
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.infer import infer_maps, model_scale
    from cellseg_nb.postprocess import instances_from_probs, PostprocessParams
    m = load_model(run/'run/best'); pp = PostprocessParams.from_dict(m.config.get('postprocess'))
    s = segment_scale(m, img, pp)
    with model_scale(m, s): pr = infer_maps(m, img).probs(); eff = float(getattr(m, 'scale', None) or 1.0)
    clip = m.config.get('dist_target') == 'clip'
    bd = np.asarray(pr['boundary'], np.float32); fg = np.asarray(pr['fg']) > pp.fg_threshold
    mask, _, _, di = _flooding(pr, pp)   # the foreground (holes filled) and dist map `choose_seed_h` compares
    r = dict(run=run.name, image=name, n_true=int(len(np.unique(gt)) - 1), scale=s, tuned_h=pp.seed_h, hs={})
    for h in HS:
        lab = instances_from_probs(pr, dataclasses.replace(pp, seed_h=h))[0]
        r['hs'][str(h)] = dict(**matches(gt, lab), sep_area=sep_area(lab, bd), dist_fit=dist_fit(lab, di, mask), **contact_signals(lab, bd, fg),
                               **(dict(clip_fit=clip_fit(lab, di, mask, eff)) if clip else {}))
    for t in LEVELS:
        lab = instances_from_probs(pr, dataclasses.replace(pp, seed_h=0.0, seed_threshold=t))[0]
        r['hs'][f'level{t}'] = matches(gt, lab)
    return r

def group(run:str) -> str:
    "Models pooled together: protocol, budget and seed (and the method, for an ablation's models)"
    import re
    p, m, budget, seed = re.fullmatch(r'([^_]+)_.+?_(ours(?:\[[^\]]*\])?)_([^_]+)_(\d+)', run).groups()
    return f'{p} {budget} seed {seed}' + (f' {m}' if m != 'ours' else '')

def f1(v:dict) -> float: return 2 * v['tp'] / max(2 * v['tp'] + v['fp'] + v['fn'], 1)

def pooled(rows:list, pick) -> float:
    "F1@0.5 pooled over `rows`' images at the height `pick(row)`"
    t = {k: sum(r['hs'][pick(r)][k] for r in rows) for k in ('tp', 'fp', 'fn')}
    return f1(t)

def report() -> dict:
    rows = [json.loads(l) for l in open(OUT/'runs.jsonl')]
    from cellseg_nb.postprocess import PostprocessParams
    out = dict(heights=list(HS), default=PostprocessParams().seed_h, by_group={}, when=time.strftime('%Y-%m-%d'),
               images=[dict(run=r['run'], image=r['image'], best=max(r['hs'], key=lambda h: f1(r['hs'][h])),
                            f1={h: round(f1(v), 4) for h, v in r['hs'].items()}) for r in rows])
    for g in dict.fromkeys(map(group, (r['run'] for r in rows))):
        rs = [r for r in rows if group(r['run']) == g]
        hs = [str(h) for h in HS if all(str(h) in r['hs'] for r in rs)]   # a height added later counts where every image has it
        t = {f'h={h}': pooled(rs, lambda r, h=h: h) for h in hs}
        t.update({f'level={v}': pooled(rs, lambda r, v=v: f'level{v}') for v in LEVELS if all(f'level{v}' in r['hs'] for r in rs)})
        t['oracle'] = pooled(rs, lambda r: max(hs, key=lambda h: f1(r['hs'][h])))
        if all(str(r.get('tuned_h')) in hs for r in rs): t['tuned'] = pooled(rs, lambda r: str(r['tuned_h']))   # the model's own (tuned) height
        for c in CRITERIA:   # a criterion added later is picked only where every image recorded it
            if all(c in r['hs'][h] for r in rs for h in hs): t[f'pick:{c}'] = pooled(rs, lambda r: max(hs, key=lambda h: r['hs'][h][c]))
        out['by_group'][g] = dict(images=len(rs), **{k: round(v, 4) for k, v in t.items()})
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}   # groups measured from runs no longer in runs.jsonl are kept ...
    kept = {g for g, t in old.get('by_group', {}).items() if g not in out['by_group'] or out['by_group'][g]['images'] < t.get('images', 0)}
    for g in sorted(kept & set(out['by_group'])): print(f"{g}: kept the {old['by_group'][g]['images']} images of {RESULTS.name}, not the {out['by_group'][g]['images']} of runs.jsonl")
    out['by_group'].update({g: old['by_group'][g] for g in kept})   # ... and so is a group of more images than runs.jsonl now holds
    out['images'] = [i for i in out['images'] if group(i['run']) not in kept] + [i for i in old.get('images', []) if group(i['run']) in kept]
    lolo = [t for g, t in out['by_group'].items() if g.startswith('lc5-lolo dev') and not g.endswith(']')]   # the defaults' models
    out['lc5-lolo dev, mean of seeds'] = {k: ms([t[k] for t in lolo]) for k in lolo[0] if k != 'images' and all(k in t for t in lolo)} if lolo else {}
    RESULTS.write_text(json.dumps(out, indent=1))
    keys = [f'h={h}' for h in HS] + [f'level={v}' for v in LEVELS] + ['tuned', 'oracle'] + [f'pick:{c}' for c in CRITERIA]   # a group without one prints nan
    print(f"{'group':26s}", ' '.join(f'{k[:10]:>10s}' for k in keys))
    for g, t in out['by_group'].items(): print(f'{g:26s}', ' '.join(f'{t.get(k, float("nan")):10.3f}' for k in keys))
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0]); ap.add_argument('--report', action='store_true')
    ap.add_argument('--method', default='ours', help="the kept models' method, e.g. 'ours[centre]' for an ablation's")
    ap.add_argument('--match', nargs='*', default=[], help='only the models whose folder name holds all of these, e.g. lc5-lolo _dev_')
    a = ap.parse_args(argv)
    if a.report: return report()
    from realdata import items_of, folds, OUT as RD
    import torch; torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True); runs = OUT/'runs.jsonl'
    done = {(r['run'], r['image']) for r in map(json.loads, open(runs))} if runs.exists() else set()
    import glob
    for run in sorted((RD/'work').glob(f'*_{glob.escape(a.method)}_*')):
        p = run.name.split('_')[0]; fold = run.name[len(p) + 1:].rsplit(f'_{a.method}_', 1)[0]
        if not (run/'run/best').exists() or fold not in folds(p) or not all(m in run.name for m in a.match): continue
        for n, img, gt in items_of(p, folds(p)[fold][2]):
            if (run.name, n) in done: continue
            t0 = time.perf_counter(); r = one(run, n, img, gt)
            with open(runs, 'a') as f: f.write(json.dumps(r) + '\n')
            print(run.name, n, {h: round(f1(v), 3) for h, v in r['hs'].items()}, f'{time.perf_counter() - t0:.0f} s', flush=True)
    return report()

if __name__ == '__main__': main()
