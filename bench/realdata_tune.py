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
- `diameter-scan`: as `dataset-diameter`, with the told diameter also searched: the tuning images' median times each of
  `SIZE_FACTORS` (above 1: the images shown smaller), the pair (factor, height) picked by pooled F1@0.5 on the tuning
  images, scored on 41-45. Whether the measured diameter is the best one to tell, a lead for `cellseg tune` searching
  the size as it searches the height.
- `cellseg-tune`: what `cellseg tune` does (`cellseg_nb.tune.tune` on 36-40: the masks' median diameter, then a search
  of `grids()`), scored on 41-45 at that diameter with the chosen post-processing: `seed_h` searches the seed height
  alone, `full` also the foreground and boundary levels and the smoothing (`DEFAULT_GRID`), `wide` as `full` with
  foreground levels up to 0.9 (the product's default, `TUNE_GRID`). Each also records F1@0.5, mSA and COCO mask AP on 41-45
  (`scored_default`, `scored_tuned`: cells scored as `cellseg predict` scores them).
- `fewer-images`: how many annotated images `cellseg tune` needs. Its default search on 1, 2 and 3 of the five tuning
  images (`subsets()`: for each size the five cyclic runs of consecutive sets, chosen before any was scored, so each
  image is in as many subsets as any other), each at the diameter measured on those images alone, scored on 41-45.
Writes `bench/results/realdata_tune.json`.

    python bench/realdata_tune.py --models 'ours_15min_0'          # all settings: about 30 CPU-minutes a model on 2 cores
    python bench/realdata_tune.py --models 'ours[centre]_dev_0' --settings dataset-diameter   # about 3
    python bench/realdata_tune.py --models lc5-lolo_Huh7_ours_dev_0 --settings dataset-diameter   # a model trained on 4 of the images
    python bench/realdata_tune.py --models ours_15min_1 --settings cellseg-tune   # about 5
    python bench/realdata_tune.py --models ours_15min_3 --settings fewer-images   # 15 tunings, about 12
    python bench/realdata_tune.py --models ours_15min_3 --settings diameter-scan  # 7 sizes, about 12
    python bench/realdata_tune.py --peer cellpose --seed 0   # the peer tuned the same way: trains it (15 min), about 25 in all
    python bench/realdata_tune.py --peer cellpose --seed 0 --rescore   # score its kept run again (a minute)
    python bench/realdata_tune.py --report   # mean ± sd over the seeds of the 15-minute models, ours (the `edt` models of before and
                                             # those of the defaults since 2026-12-07, `CURRENT`) and the peer (`summary_15min`)

`--peer cellpose` trains Cellpose on LIVECell-5 as `realdata.py`'s lc5-usiigaci run does, then tunes it as a Cellpose user
would, on the same images as ours: the tuning images' median diameter, and the pair of its two thresholds
(`CP_PAIRS`) with the best pooled F1 on 36-40; recorded as `cellpose[tuned]_15min_<seed>`, with its untuned score
(the training masks' diameter, default thresholds) from the same model; F1@0.5, mSA and AP of the untuned, default-pair and
tuned masks (`scored_*`; Cellpose's cells scored by their mean cell probability, as `realdata.py` scores them; the two
tuned rows only for runs trained after 2026-12-05 05:30, which keep each pair's scores; `--rescore` scores a kept run again).
Runs trained after 2026-12-05 10:00 also segment the scored images at each subset's diameter with Cellpose's default
thresholds (`cellpose-fewer`: what a Cellpose user who annotated only those images gets; its thresholds, which on
all five images did no better than its defaults in F1, are not tuned per subset). `--report` pools both per number of
images over the seeds that have both (`summary_15min.fewer_images`).
"""
from __future__ import annotations
import argparse, dataclasses, json, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
RESULTS = ROOT/'bench/results/realdata_tune.json'
HS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)   # seed peak heights; the default `PostprocessParams.seed_h` is 0.05
SETTINGS = ('automatic', 'dataset-diameter', 'cellseg-tune', 'fewer-images', 'diameter-scan')
SIZE_FACTORS = (0.7, 0.8, 0.9, 1.0, 1.12, 1.25, 1.4)   # `diameter-scan`: the tuning images' median diameter times these, as told (`--diameter`)
TUNE, TEST = [f'set{i}' for i in range(36, 41)], [f'set{i}' for i in range(41, 46)]
KS = (1, 2, 3)   # fewer annotated images than the five of TUNE

def subsets(n:int=len(TUNE), ks=KS) -> dict:
    "{k: the `n` cyclic runs of k consecutive tuning images (indices)}: fixed in advance, each image in k of the `n` subsets of size k"
    if not all(0 < k < n for k in ks): raise ValueError(f"subset sizes {ks}: expected 1..{n - 1} (all {n}: the `cellseg-tune` setting)")
    return {k: [tuple((i + j) % n for j in range(k)) for i in range(n)] for k in ks}

def sub_key(s) -> str:
    "A subset's name in the results and in Cellpose's output keys: its indices joined by '-'"
    return '-'.join(map(str, s))

def subset_diameters(tune) -> dict:
    "{`sub_key`: the median cell diameter (px, 2 places, as `tuning_maps` records it) of those tuning images' masks}"
    from cellseg_nb.data.targets import median_diameter
    return {sub_key(x): round(float(median_diameter([tune[i][2] for i in x])), 2) for ss in subsets(len(tune)).values() for x in ss}

def as_source(items):
    "An `ArraySource` of [(name, image, labels)]"
    from cellseg_nb.data.sources import ArraySource
    return ArraySource([i for _, i, _ in items], [g for _, _, g in items], names=[n for n, _, _ in items])

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

def f1_msa_ap(items, preds) -> dict:
    "F1@0.5, mSA and COCO mask AP (`realdata.score`, to 4 places) of predictions [(labels, scores)] on [(name, image, labels)]"
    import realdata as rd
    return {k: round(v, 4) for k, v in rd.score(items, preds).items() if k in rd.SCORE_KEYS[1:4]}

def scored(maps, items, params) -> dict:
    "`f1_msa_ap` of the cells `params` cut from `maps` of `items`, scored as `cellseg predict` scores them"
    import realdata as rd
    from cellseg_nb.infer import labelled_cells
    return f1_msa_ap(items, [(lab, rd.label_scores(lab, cells)) for lab, cells in (labelled_cells(mp, params) for mp in maps)])

def product(m, tune, test, searches:dict|None=None) -> dict:
    "`cellseg tune` on the images `tune` ((name, image, labels)), scored on `test`, with each of `searches` (default `grids()`; the maps computed once)"
    from cellseg_nb.tune import tune as fit, tuning_maps
    tu = tuning_maps(m, as_source(tune), progress=False)
    te = tuning_maps(m, as_source(test), diameter=tu[2], progress=False)[0]
    out, default = {}, None
    for name, grid in (searches or grids()).items():
        t = fit(m, as_source(tune), grid=grid, progress=False, maps=tu)
        default = default or scored(te, test, t.start)   # the model's own post-processing: the same for every search
        tuned = scored(te, test, t.params)
        out[name] = dict(t.summary(), f1_default=default['f1'], f1_tuned=tuned['f1'], scored_default=default, scored_tuned=tuned)
        out[name].pop('when')
    return out

def fewer(m, tune, test) -> dict:
    "`product` with `cellseg tune`'s default search on each of `subsets()` of the images `tune`, at their own measured diameter, scored on `test`"
    import warnings
    from cellseg_nb.tune import TUNE_GRID, MIN_TUNE_CELLS
    out = {}
    for k, ss in subsets(len(tune)).items():
        for x in ss:
            with warnings.catch_warnings():   # the few-cells warning is recorded as `warned`, not printed
                warnings.filterwarnings('ignore', message='tuning on .* annotated cells')
                w = product(m, [tune[i] for i in x], test, {'wide': TUNE_GRID})['wide']
            r = out[sub_key(x)] = dict(k=k, images=[tune[i][0] for i in x], warned=w['n_cells'] < MIN_TUNE_CELLS, in_sample_after=w['after'],
                                       **{f: w[f] for f in ('n_cells', 'image_diameter', 'chosen', 'scored_default', 'scored_tuned')})
            print(f"  {k} image(s) {r['images']}: d {r['image_diameter']:.1f}, F1 {r['scored_tuned']['f1']:.3f}", flush=True)
    return out

def scan(m, tune, test, d:float) -> dict:
    "`diameter-scan`: the pair (told diameter `d` x factor, seed height) with the best pooled F1 on `tune`, scored on `test`"
    from cellseg_nb.infer import matched_scale
    rows = {f: ([counts(m, img, g, matched_scale(m, d * f)) for _, img, g in tune], [counts(m, img, g, matched_scale(m, d * f)) for _, img, g in test])
            for f in SIZE_FACTORS}
    by = {f: dict(tuning_f1={h: round(pooled(tu, h), 4) for h in HS}, scored_f1={h: round(pooled(te, h), 4) for h in HS}) for f, (tu, te) in rows.items()}
    pick = max(((f, h) for f in SIZE_FACTORS for h in HS), key=lambda fh: by[fh[0]]['tuning_f1'][fh[1]])
    at1 = max(HS, key=lambda h: by[1.0]['tuning_f1'][h])   # `dataset-diameter`'s pick, on the same maps
    best = max(((f, h) for f in SIZE_FACTORS for h in HS), key=lambda fh: by[fh[0]]['scored_f1'][fh[1]])
    return dict(picked_factor=pick[0], picked_h=pick[1], f1_tuned=by[pick[0]]['scored_f1'][pick[1]],
                h_at_measured=at1, f1_at_measured=by[1.0]['scored_f1'][at1],
                oracle_factor=best[0], oracle_h=best[1], f1_oracle=by[best[0]]['scored_f1'][best[1]], by_factor=by)

CP_PAIRS = dict(cellprob=[-2.0, -1.0, 0.0, 1.0], flow=[0.4, 0.8])   # Cellpose's two thresholds its docs tell users to adjust (defaults 0, 0.4)

def peer_cellpose(seed:int, budget:str='15min', train:bool=True) -> dict:
    "Cellpose trained on LIVECell-5, then one diameter and its thresholds chosen on the tuning images, scored on the others (`train=False`: score the kept run again); also at each subset's diameter (`cellpose-fewer`)"
    import subprocess, numpy as np, realdata as rd
    from realdata_seedh import pooled as at
    from cellseg_nb.data.targets import median_diameter
    tr = rd.folds('lc5-usiigaci')['41-45'][0]
    tune, test = rd.items_of('usiigaci', TUNE), rd.items_of('usiigaci', TEST)
    d = median_diameter([g for _, _, g in tune])
    work = rd.OUT/'work'/f'lc5-usiigaci_41-45_cellpose[tuned]_{budget}_{seed}'
    if train:
        work.mkdir(parents=True, exist_ok=True); arrs = {}
        for i, (_, img, lab) in enumerate(rd.items_of('lc5-usiigaci', tr)): arrs[f'train_{i}'] = img; arrs[f'mask_{i}'] = lab
        for i, (_, img, _) in enumerate(test): arrs[f'test_{i}'] = img
        for i, (_, img, _) in enumerate(tune): arrs[f'tune_{i}'] = img
        np.savez(work/'in.npz', **arrs)
        subprocess.run([str(rd.cellpose_python()), str(ROOT/'bench/peer_cellpose.py'), str(work/'in.npz'), str(work/'out.npz'),
                        '--minutes', str(rd.budget_minutes(budget)), '--seed', str(seed),
                        '--tune', json.dumps(dict(diameter=d, diameters=subset_diameters(tune), **CP_PAIRS))], check=True)
    elif not (work/'out.npz').exists(): sys.exit(f"{work/'out.npz'} not found: train it first (--peer cellpose --seed {seed}, without --rescore)")
    o = np.load(work/'out.npz'); info = json.loads(str(o['info'])); pairs = [tuple(p) for p in info['pairs']]
    rows = lambda tag, items: [dict(hs={k: match_counts(g, o[f'{tag}_{k}_{i}']) for k in range(len(pairs))}) for i, (_, _, g) in enumerate(items)]
    tu, te = rows('tlabels', tune), rows('labels', test)
    f1 = lambda rs, k: round(at(rs, lambda r: k), 4)
    pick, best, dflt = max(range(len(pairs)), key=lambda k: f1(tu, k)), max(range(len(pairs)), key=lambda k: f1(te, k)), pairs.index((0.0, 0.4))
    untuned = at([dict(hs={0: match_counts(g, o[f'labels_{i}'])}) for i, (_, _, g) in enumerate(test)], lambda r: 0)
    ap = lambda lab, sc: f1_msa_ap(test, [(o[f'{lab}_{i}'], o[f'{sc}_{i}']) for i in range(len(test))])
    has = lambda k: f'labelsscores_{k}_0' in o   # runs that kept each pair's scores (trained after 2026-12-05 05:30)
    extra = dict(scored_untuned=ap('labels', 'scores'),
                 **({} if not has(pick) else dict(scored_default=ap(f'labels_{dflt}', f'labelsscores_{dflt}'), scored_tuned=ap(f'labels_{pick}', f'labelsscores_{pick}'))))
    subs = {key: dict(k=len(key.split('-')), images=[TUNE[int(i)] for i in key.split('-')], image_diameter=dk, scored_default=f1_msa_ap(test, [(o[f'sub_{key}_{i}'], o[f'subscores_{key}_{i}']) for i in range(len(test))]))
            for key, dk in info.get('diameters', {}).items()}   # runs trained after 2026-12-05 10:00: fewer annotated images
    return {**({'cellpose-fewer': subs} if subs else {}), 'cellpose-tune': dict(pairs=pairs, tuned_pair=pairs[pick], tuning_f1=[f1(tu, k) for k in range(len(pairs))], scored_f1=[f1(te, k) for k in range(len(pairs))],
                                  f1_untuned=round(untuned, 4), f1_default=f1(te, dflt), f1_tuned=f1(te, pick), oracle_pair=pairs[best], f1_oracle=f1(te, best),
                                  objects_tuned=sum(x['hs'][pick]['cells'] for x in te), cells=sum(x['hs'][pick]['tp'] + x['hs'][pick]['fn'] for x in te),
                                  tune_diameter=round(d, 2), training_diameter=info['diameter'],
                                  **{k: info[k] for k in ('steps', 'train_s', 'budget_used', 'default_pair_as_eval')}, **extra)}

def record(name:str, r:dict, stamp:str='when', **extra):
    "Merge one model's results into `RESULTS`, read again just before writing (another run may have written since); `stamp`: the key dated now"
    res = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    res.update(tuning_images=TUNE, scored_images=TEST, heights=list(HS))
    res.setdefault('runs', {}).setdefault(name, {}).update(r, **extra, **{stamp: time.strftime('%Y-%m-%d %H:%M')})
    RESULTS.write_text(json.dumps(res, indent=1))

CURRENT = ('ours[scan]_15min_', 'ours[steady]_15min_')   # the kept models of today's defaults (one method name per seed)
SUMMARY = {   # row of the seed table -> (run name prefix or prefixes, how to read its scores); ours untuned comes from realdata.json
    'ours, at the tuning diameter (own post-processing)': ('ours_15min_', lambda r: r.get('cellseg-tune', {}).get('wide', {}).get('scored_default')),
    'ours, `cellseg tune` (default search)': ('ours_15min_', lambda r: r.get('cellseg-tune', {}).get('wide', {}).get('scored_tuned')),
    # the defaults since 2026-12-07 (`clip`, the sharpness gate): seeds 0-1 trained with the gate, seed 2 with the steadiest size
    'ours (`clip` + gate), at the tuning diameter': (CURRENT, lambda r: r.get('cellseg-tune', {}).get('wide', {}).get('scored_default')),
    'ours (`clip` + gate), `cellseg tune`': (CURRENT, lambda r: r.get('cellseg-tune', {}).get('wide', {}).get('scored_tuned')),
    'Cellpose, untuned (training diameter)': ('cellpose[tuned]_15min_', lambda r: r['cellpose-tune'].get('scored_untuned', {'f1': r['cellpose-tune']['f1_untuned']})),
    'Cellpose, at the tuning diameter (default thresholds)': ('cellpose[tuned]_15min_', lambda r: r['cellpose-tune'].get('scored_default', {'f1': r['cellpose-tune']['f1_default']})),
    'Cellpose, thresholds tuned': ('cellpose[tuned]_15min_', lambda r: r['cellpose-tune'].get('scored_tuned', {'f1': r['cellpose-tune']['f1_tuned']})),
}

def report() -> dict:
    "Mean ± sd over the seeds of the 15-minute LIVECell-5 models: ours untuned and tuned, Cellpose untuned, at the diameter and tuned, and the gaps seed number by seed number"
    import realdata as rd
    res = json.loads(RESULTS.read_text()); runs = res['runs']
    rows = {}
    rd_rows = [r for r in json.loads(rd.RESULTS.read_text())['per_fold'] if (r['protocol'], r['method'], r['budget']) == ('lc5-usiigaci', 'ours', '15min')]
    rows['ours, untuned (automatic size)'] = {s['seed']: {k: s[k] for k in rd.SCORE_KEYS[1:4] if k in s} for r in rd_rows for s in r['per_seed']}
    for row, (pre, get) in SUMMARY.items():
        rows[row] = {seed_of(k, pre): get(r) for k, r in runs.items() if seed_of(k, pre) is not None and get(r)}
    nan = float('nan')
    table = {row: dict(seeds=sorted(v), **{m: rd.ms([v[s].get(m, nan) for s in sorted(v)]) for m in rd.SCORE_KEYS[1:4]}) for row, v in rows.items()}
    ours = rows['ours, `cellseg tune` (default search)']
    gap = lambda other, mine=ours, m='f1': {s: round(mine[s][m] - other[s][m], 4) for s in sorted(mine) if s in other and m in other[s]}
    gaps = {'F1, ours tuned - Cellpose tuned': gap(rows['Cellpose, thresholds tuned']),
            'F1, ours (`clip` + gate) tuned - Cellpose tuned': gap(rows['Cellpose, thresholds tuned'], rows['ours (`clip` + gate), `cellseg tune`']),
            'F1, ours tuned - Cellpose at the diameter': gap(rows['Cellpose, at the tuning diameter (default thresholds)']),
            'AP, ours tuned / Cellpose tuned': {s: round(ours[s]['ap'] / v['ap'], 2) for s, v in rows['Cellpose, thresholds tuned'].items() if s in ours and v.get('ap', 0) > 0}}
    res['summary_15min'] = dict(table=table, by_seed=gaps, when=time.strftime('%Y-%m-%d %H:%M'),
                                note='seed N of ours and seed N of Cellpose are independent trainings: the by-seed gaps pair seed numbers, not shared data')
    if (few := report_fewer(runs)): res['summary_15min']['fewer_images'] = few
    RESULTS.write_text(json.dumps(res, indent=1))
    f = lambda d, n: (f"{d['mean']:.3f} ± {d['sd']:.3f}" if d['n'] > 1 else (f"{d['mean']:.3f}" if d['n'] else '–')) + ('' if d['n'] == n else f" ({d['n']} seeds)")
    print('| LIVECell-5 → Usiigaci 41–45, 15 min | seeds | F1@0.5 | mSA | AP |\n|---|---|---|---|---|')
    for row, t in table.items(): print(f"| {row} | {','.join(map(str, t['seeds']))} | " + ' | '.join(f(t[m], len(t['seeds'])) for m in rd.SCORE_KEYS[1:4]) + ' |')
    for k, v in gaps.items(): print(f'{k}, seed for seed (independent trainings): {v}')
    if few:
        seeds = lambda t: ','.join(map(str, sorted({s for v in t.values() for s in v['seeds']})))
        print('\n| annotated images to tune on (sd over subsets x seeds; all five: over seeds) | '
              + ' | '.join(f'{row} (seeds {seeds(t)})' for row, t in few['table'].items()) + ' |\n' + '|---' * (len(few['table']) + 1) + '|')
        for k in sorted({k for t in few['table'].values() for k in t}):
            print(f'| {k} | ' + ' | '.join(f(t[k]['f1'], t[k]['n']) + f" / AP {t[k]['ap']['mean']:.3f}" if k in t else '–' for t in few['table'].values()) + ' |')
        if not few['diameters_agree']: print('WARNING: ours and Cellpose were given different diameters for some subsets')
        for k, g in few['f1_gap_same_images'].items(): print(f"F1 gap, same {k} image(s): {g['mean']:+.3f}, ours ahead on {g['ours_ahead']} of {g['n']}")
    return res['summary_15min']

def seed_of(name:str, prefix) -> int|None:
    "The seed of run `name` if it is `prefix` (or one of a tuple of prefixes) + a number, else None"
    for p in ((prefix,) if isinstance(prefix, str) else prefix):
        if name.startswith(p) and name[len(p):].isdigit(): return int(name[len(p):])
    return None

def report_fewer(runs:dict) -> dict:
    "Mean ± sd per number of tuning images over the subsets × seeds of `fewer-images` (all five: over the seeds), ours and Cellpose, on the seeds both have"
    import realdata as rd
    ours = {seed_of(k, 'ours_15min_'): r for k, r in runs.items() if seed_of(k, 'ours_15min_') is not None and 'fewer-images' in r}
    cp = {seed_of(k, 'cellpose[tuned]_15min_'): r for k, r in runs.items() if seed_of(k, 'cellpose[tuned]_15min_') is not None and 'cellpose-fewer' in r}
    if ours and cp: ours, cp = ({s: v for s, v in d.items() if s in ours.keys() & cp.keys()} for d in (ours, cp))   # one seed set for both
    if not ours and not cp: return {}
    rows = {}   # row -> k -> [(seed, subset, scores)]
    add = lambda row, k, seed, key, v: v and rows.setdefault(row, {}).setdefault(k, []).append((seed, key, v))
    for seed, r in ours.items():
        for key, x in r['fewer-images'].items():
            add('ours, `cellseg tune`', x['k'], seed, key, x['scored_tuned']); add('ours at their diameter, own post-processing', x['k'], seed, key, x['scored_default'])
        w = r.get('cellseg-tune', {}).get('wide', {})
        add('ours, `cellseg tune`', len(TUNE), seed, 'all', w.get('scored_tuned')); add('ours at their diameter, own post-processing', len(TUNE), seed, 'all', w.get('scored_default'))
    for seed, r in cp.items():
        for key, x in r['cellpose-fewer'].items(): add('Cellpose at their diameter, default thresholds', x['k'], seed, key, x['scored_default'])
        add('Cellpose at their diameter, default thresholds', len(TUNE), seed, 'all', r['cellpose-tune'].get('scored_default'))
    nan = float('nan')
    table = {row: {k: dict(n=len(v), seeds=sorted({s for s, _, _ in v}), **{m: rd.ms([x.get(m, nan) for _, _, x in v]) for m in rd.SCORE_KEYS[1:4]})
                   for k, v in sorted(by_k.items())} for row, by_k in rows.items()}
    a, b = rows.get('ours, `cellseg tune`', {}), rows.get('Cellpose at their diameter, default thresholds', {})
    paired = {}   # the same annotated images, each method's own seed of that number
    for k in sorted(set(a) & set(b)):
        cpk = {(s, key): x for s, key, x in b[k]}
        d = [round(x['f1'] - cpk[(s, key)]['f1'], 4) for s, key, x in a[k] if (s, key) in cpk]
        if d: paired[k] = dict(n=len(d), mean=round(sum(d) / len(d), 4), ours_ahead=sum(v > 0 for v in d), gaps=d)
    same_d = [ours[s]['fewer-images'][key]['image_diameter'] == x['image_diameter'] for s in ours.keys() & cp.keys()
              for key, x in cp[s]['cellpose-fewer'].items() if key in ours[s]['fewer-images']]
    return dict(table=table, f1_gap_same_images=paired, diameters_agree=all(same_d), subsets={k: [sub_key(x) for x in ss] for k, ss in subsets().items()},
                warned_below_min_cells={k: sum(x['warned'] for r in ours.values() for x in r['fewer-images'].values() if x['k'] == k) for k in KS})

def pooled(rows, h) -> float:
    "F1@0.5 pooled over `rows` (of `counts`) at the height `h`"
    from realdata_seedh import pooled as at
    return at(rows, lambda r: h)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', nargs='+', default=['ours_15min_0'],
                    help="kept lc5-usiigaci models as <method>_<budget>_<seed>, or any kept LIVECell-5 model's folder, e.g. lc5-lolo_Huh7_ours_dev_0")
    ap.add_argument('--settings', nargs='+', default=list(SETTINGS), choices=SETTINGS, help='automatic: two passes at 1.5x, about 80 s an image; cellseg-tune: the product command, three searches; fewer-images: it on 1-3 of the tuning images')
    ap.add_argument('--peer', choices=['cellpose'], help='train the peer and tune it on the same images instead (--seed)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--rescore', action='store_true', help="with --peer: score the kept run again, no training")
    ap.add_argument('--report', action='store_true', help='mean ± sd over the seeds of the 15-minute models (ours and the peer), into the results')
    a = ap.parse_args(argv)
    if a.rescore and not a.peer: ap.error('--rescore scores a kept peer run again: give --peer cellpose --seed N')
    if a.report: return report()
    if a.peer:
        r = peer_cellpose(a.seed, train=not a.rescore); print(r, flush=True)
        return record(f'cellpose[tuned]_15min_{a.seed}', r, stamp='rescored' if a.rescore else 'when')
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
            if setting == 'fewer-images':
                r[setting] = fewer(m, tune, test); continue
            if setting == 'diameter-scan':
                r[setting] = scan(m, tune, test, d); print(name, setting, {k: v for k, v in r[setting].items() if k != 'by_factor'}, flush=True); continue
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
