"""Cell types a biologist can trust (issue 16): per-cell type accuracy, calibration and open-set detection of
`cellseg train`'s defaults on real images, before and after the temperature and the unknown threshold it fits.

Protocol `lc5-open` (LIVECell-5, leave one cell line out as the *unknown* type), one fold per line L:
- the model is trained (dev budget: 300 steps, the product's defaults, `class_names` = the two other lines) on the
  left halves (352 x 520) of the other lines' images, validated on their top-right quarters (where `cellseg train`
  fits the type temperature and the open-set threshold) and scored on their bottom-right quarters: cells of the
  two **known** types, never seen in training;
- the whole images of L: cells of a type the model was **never trained on**;
- Usiigaci sets 41-45 (another microscope, fibroblasts): an **all-unknown domain**.
Protocol `synth-open` (`--folds round spindle spread`): the same on the synthetic generator, one morphology M held out:
trained on single-type images of the two others, scored on new images of them, of M and on mixed images of all three
(M's cells there are unknown too; no Usiigaci). Its scores go to `synth_open` in the results ('lolo' = M's cells).
Per fold and seed: known-type accuracy (closed: argmax; open: unknown counts as wrong) from the per-pixel type head
(the product's aggregation) and from the image-level `cls` head, per type, and over the types with >= 2 training images
(`accuracy_2plus`, `ece_2plus`: where the issue sets its target; LIVECell-5 has one Huh7 image), macro F1, ECE before (temperature 1) and after
calibration, unknown-detection AUROC against L and against Usiigaci (the product's unknown score: the novelty, the
distance to the validation cells' per-type prototypes of decoder features, where `cellseg train` fitted them; also
1 - calibrated type probability and the `cls` head's confidence as alternatives), and the share of unknown cells flagged.
Runs resume from `bench/out/celltypes/runs.jsonl`; every run keeps its matched cells' probabilities in `cells/`; `--report`
keeps the runs of earlier sessions that the results file holds (add seeds one session at a time) and scores the kept cells of
every run again with the current code (a new score reaches older runs without training or segmenting again).

    python bench/celltypes.py --seeds 0 1 2          # about 10 CPU-minutes a run on a 2-core machine
    python bench/celltypes.py --rescore --seeds 0    # calibrate and score the kept models again with the current code
    python bench/celltypes.py --folds round spindle spread   # synth-open
    python bench/celltypes.py --report               # -> bench/results/celltypes.json (+ reliability diagrams)
"""
from __future__ import annotations
import argparse, json, os, sys, time
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
SMOKE = bool(os.environ.get('CELLTYPES_SMOKE'))   # a few steps per run (the test of this script)
OUT = ROOT/('bench/out/celltypes-smoke' if SMOKE else 'bench/out/celltypes')
RESULTS = OUT/'celltypes.json' if SMOKE else ROOT/'bench/results/celltypes.json'
LINES = ('BT474', 'Huh7', 'MCF7')
SYNTH = ('round', 'spindle', 'spread')   # `cellseg_nb.data.synth.SYNTH_TYPES`: protocol `synth-open` holds one out
SYNTH_N = dict(train=4, val=2, test=2, unknown=2, mixed=2)   # synthetic 520 x 704 images per known type (mixed: in all)
STEPS = 3 if SMOKE else 300   # the dev budget of bench/realdata.py
USI_TEST = [41, 42, 43, 44, 45]

def pieces(img, lab):
    "The (train, val, test) pieces of one image: left half, top-right and bottom-right quarters"
    H, W = lab.shape; h, w = H // 2, W // 2
    return dict(train=(img[:, :w], lab[:, :w]), val=(img[:h, w:], lab[:h, w:]), test=(img[h:, w:], lab[h:, w:]))

def fold_data(unknown:str, work:Path):
    "Write the fold's train/val folders (images + `_masks`); return them with the test items [(name, image, labels, line)]"
    import tifffile
    from realdata import lc5_items
    tests = []
    for name, img, lab in lc5_items():
        line = name.split('_')[0]
        if line == unknown: tests.append((name, img, lab, line)); continue
        for split, (im, lb) in pieces(img, lab).items():
            if split == 'test': tests.append((f'{name}_{split}', im, lb, line)); continue
            (work/split).mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(work/split/f'{name}_{split}.tif', np.ascontiguousarray(im))
            tifffile.imwrite(work/split/f'{name}_{split}_masks.tif', np.ascontiguousarray(lb.astype(np.int32)))
    return dict(data_folder=str(work/'train'), val_data_folder=str(work/'val')), tests

def synth_fold_data(unknown:str, work:Path):
    "`fold_data` of `synth-open`: train/val of the two other morphologies; tests: new images of them, of `unknown` and mixed (truth per label)"
    import tifffile
    from cellseg_nb.data.synth import synth_image
    known, tests, i = [t for t in SYNTH if t != unknown], [], 0
    def draw(t):
        nonlocal i; i += 1; rng = np.random.default_rng([16, SYNTH.index(unknown), i])   # fixed data: the same for every seed
        return synth_image(rng, t, (520, 704), float(rng.uniform(0.1, 0.8)), SYNTH)
    for split in ('train', 'val'):
        (work/split).mkdir(parents=True, exist_ok=True)
        for t in known:
            for j in range(SYNTH_N[split]):
                img, lab, _ = draw(t)
                tifffile.imwrite(work/split/f'{t}_{j}_{split}.tif', img); tifffile.imwrite(work/split/f'{t}_{j}_{split}_masks.tif', lab)
    for t, n in [(t, SYNTH_N['test']) for t in known] + [(unknown, SYNTH_N['unknown']), ('mixed', SYNTH_N['mixed'])]:
        for j in range(n):
            img, lab, names = draw(t); tests.append((f'{t}_{j}_test', img, lab, t if t != 'mixed' else list(names)))
    return dict(data_folder=str(work/'train'), val_data_folder=str(work/'val')), tests

def fold_items(unknown:str, work:Path):
    "The fold's train/val folders and every scored item: `synth_fold_data`'s, or `fold_data`'s plus Usiigaci (all unknown)"
    if unknown in SYNTH: return synth_fold_data(unknown, work)
    from realdata import usi_items
    data, tests = fold_data(unknown, work)
    return data, tests + [(n, img, lab, 'usiigaci') for n, img, lab in usi_items(USI_TEST[:1] if SMOKE else USI_TEST)]

def model_input(model, img):
    "The whole raw image as the model's input (1, in_channels, H, W), normalised as `infer_maps` normalises it"
    import torch
    from cellseg_nb.core import normalize_image
    from cellseg_nb.infer import normalisation_of
    x = torch.from_numpy(normalize_image(img, **normalisation_of(model)))[None, None]
    return x.expand(-1, int(model.config.get('in_channels', 1)), -1, -1)

def image_cls(model, img) -> np.ndarray:
    "The image-level `cls` head's type probabilities for a whole raw image"
    import torch, torch.nn.functional as F
    x = model_input(model, img); H, W = x.shape[-2:]
    x = F.pad(x, (0, -W % 32, 0, -H % 32), mode='reflect')
    with torch.inference_mode(): out = model.eval()(x)
    return torch.softmax(out['cls'].float(), 1)[0].numpy()

def lines_of(line, gt_ids) -> np.ndarray:
    "The line of each ground-truth cell `gt_ids`: `line` is the image's line, or a list with the line of every label 1..n"
    g = np.asarray(gt_ids, int)
    return np.full(len(g), line, object) if isinstance(line, str) else np.asarray(line, object)[g - 1]

def cells_of(model, items, class_names) -> dict:
    "Matched cells (IoU >= 0.5) of every item (name, image, labels, line or per-label lines): true type (UNKNOWN for other lines), pixel-head types and probabilities, cls-head probabilities"
    from cellseg_nb.infer import segment
    from cellseg_nb.metrics import match_instances, UNKNOWN
    from cellseg_nb.postprocess import PostprocessParams
    pp = PostprocessParams.from_dict({**model.config['postprocess'], 'type_temperature': 1.0, 'unknown_below': 0.0, 'novel_above': None})  # raw: calibrated below
    rows = dict(true=[], p=[], nov=[], cls=[], domain=[], image=[])
    for name, img, gt, line in items:
        lab, cells = segment(model, img, pp)
        m = match_instances(gt, lab, thresholds=(0.5,))
        g, pr = np.asarray(m['gt_ids']), np.asarray(m['pred_ids'])
        t = cells.set_index('label')
        P = np.zeros((len(pr), len(class_names)))   # K = 2: the type vector is (p, 1 - p) around the argmax
        k, q = t.cell_type_id.reindex(pr).to_numpy(int), t.type_probability.reindex(pr).to_numpy(float)
        P[np.arange(len(pr)), k] = q; P[np.arange(len(pr)), 1 - k] = 1 - q
        c = image_cls(model, img)
        ln = lines_of(line, g)
        rows['true'].append(np.array([class_names.index(x) if x in class_names else UNKNOWN for x in ln], int))
        rows['p'].append(P); rows['cls'].append(np.repeat(c[None], len(g), 0))
        rows['nov'].append(t.type_novelty.reindex(pr).to_numpy(float) if 'type_novelty' in t else np.full(len(pr), np.nan))
        rows['domain'].append(np.array(['known' if x in class_names else ('usiigaci' if x == 'usiigaci' else 'lolo') for x in ln], dtype='<U8'))
        rows['image'].append(np.full(len(g), name))
    return {k: np.concatenate(v) for k, v in rows.items()}

def train_counts(work:Path, class_names) -> list:
    "Training images of each class in a fold's `data/train` folder (by file-name prefix; a piece of an image counts once)"
    from collections import Counter
    from cellseg_nb.core import cell_line_from_name
    n = Counter(cell_line_from_name(p.name, class_names) for p in (work/'data/train').glob('*.tif') if not p.stem.endswith('_masks'))
    return [n[k] for k in class_names]

def scores(c:dict, temperature:float, unknown_below:float, class_names, novel_above:float|None=None, counts=None) -> dict:
    """Type scores of matched cells `c` at a temperature and open-set rule (novelty above `novel_above` where given, else probability below `unknown_below`);
    `accuracy_2plus`, `ece_2plus`: known-type accuracy and calibration error over the types with >= 2 training images (`counts`),
    where the issue sets its accuracy target"""
    from cellseg_nb.metrics import cell_type_scores, expected_calibration_error, auroc, UNKNOWN
    from cellseg_nb.postprocess import soften
    q = soften(c['p'], temperature); conf, k = q.max(1), q.argmax(1)
    kn = c['domain'] == 'known'; t = c['true']
    nov = c.get('nov', np.full(len(t), np.nan)); by_nov = novel_above is not None and np.isfinite(nov).all()
    openk = np.where(nov > novel_above, UNKNOWN, k) if by_nov else np.where(conf < unknown_below, UNKNOWN, k)
    unk = nov if by_nov else 1 - conf   # the product's unknown score
    closed, opened = cell_type_scores(t[kn], k[kn], class_names), cell_type_scores(t[kn], openk[kn], class_names)
    rich = kn & np.isin(t, [i for i, n in enumerate(counts or []) if n >= 2])
    out = dict(n_known=int(kn.sum()), accuracy_closed=closed['accuracy'], accuracy_open=opened['accuracy'], macro_f1_closed=closed['macro_f1'],
               accuracy_2plus=float((k[rich] == t[rich]).mean()) if rich.any() else float('nan'), ece_2plus=expected_calibration_error(conf[rich], k[rich] == t[rich]),
               ece=expected_calibration_error(conf[kn], k[kn] == t[kn]),
               accuracy_cls_head=float((c['cls'][kn].argmax(1) == t[kn]).mean()) if kn.any() else float('nan'),
               ece_cls_head=expected_calibration_error(c['cls'][kn].max(1), c['cls'][kn].argmax(1) == t[kn]))
    for d in ('lolo', 'usiigaci'):
        sel = kn | (c['domain'] == d)
        out[f'n_{d}'] = int((c['domain'] == d).sum())
        out[f'auroc_{d}'] = auroc(unk[sel], c['domain'][sel] == d)
        out[f'auroc_{d}_prob'] = auroc(1 - conf[sel], c['domain'][sel] == d)
        out[f'auroc_{d}_novelty'] = auroc(nov[sel], c['domain'][sel] == d) if np.isfinite(nov).all() else float('nan')
        out[f'auroc_{d}_cls_head'] = auroc(1 - c['cls'][sel].max(1), c['domain'][sel] == d)
        out[f'flagged_{d}'] = float((openk[c['domain'] == d] == UNKNOWN).mean()) if (c['domain'] == d).any() else float('nan')
        both = np.r_[t[kn], np.full(int((c['domain'] == d).sum()), UNKNOWN)]
        out[f'macro_f1_open_{d}'] = cell_type_scores(both, np.r_[openk[kn], openk[c['domain'] == d]], class_names)['macro_f1']
    return out

def combined_auroc(c:dict, temperature:float, d:str, seed:int=0) -> float:
    "Unknown AUROC against domain `d` of novelty and 1 - probability combined: the mean of their ranks among known cells (cross-fitted halves)"
    from cellseg_nb.metrics import auroc
    from cellseg_nb.postprocess import soften
    nov, unc = c.get('nov'), 1 - soften(c['p'], temperature).max(1)
    if nov is None or not np.isfinite(nov).all() or not (c['domain'] == d).any(): return float('nan')
    idx = np.flatnonzero(c['domain'] == 'known'); np.random.default_rng(seed).shuffle(idx); halves = np.array_split(idx, 2)
    rank = lambda x, ref: np.searchsorted(np.sort(x[ref]), x, side='right') / len(ref)
    res = []
    for ref, ev in (halves, halves[::-1]):   # ranks from one half of the known cells, scored on the other half + domain d
        sel = np.zeros(len(nov), bool); sel[ev] = True; sel |= c['domain'] == d
        res.append(auroc((rank(nov, ref) + rank(unc, ref))[sel], c['domain'][sel] == d))
    return float(np.mean(res))

def run_one(unknown:str, seed:int) -> dict:
    import shutil
    from cellseg_nb.train import train
    from cellseg_nb.models.unet import load_model
    work = OUT/'work'/f'{unknown}_{seed}'
    if work.exists(): shutil.rmtree(work)
    data, tests = fold_items(unknown, work/'data')
    class_names = [l for l in (SYNTH if unknown in SYNTH else LINES) if l != unknown]
    t0 = time.perf_counter()
    s = train(out=str(work/'run'), seed=seed, progress=False, max_steps=STEPS, class_names=class_names, **data)
    model = load_model(Path(s['run'])/'best')
    c = cells_of(model, tests, class_names)
    np.savez_compressed(OUT/'cells'/f'{unknown}_{seed}.npz', **c)
    return record(unknown, seed, class_names, s['steps'], s.get('type_calibration') or {}, c, time.perf_counter() - t0)

def by_type(c:dict, class_names) -> dict:
    "Each known type's share of its matched cells typed right (argmax; the temperature does not change it): the confusion matrix's rows"
    from cellseg_nb.metrics import cell_type_scores
    kn = c['domain'] == 'known'
    cm = cell_type_scores(c['true'][kn], c['p'][kn].argmax(1), class_names)['confusion'].iloc[:-1]   # the last row: cells of unknown type
    return {name: float(row[name] / row.sum()) for name, row in cm.iterrows() if row.sum()}

def run_scores(c:dict, class_names, temperature:float, unknown_below:float, novel_above:float|None, counts) -> dict:
    "A run's scores from its matched cells `c`: before (temperature 1) and after calibration, and each known type's accuracy"
    return dict(before=scores(c, 1.0, 0.0, class_names, counts=counts), after=scores(c, temperature, unknown_below, class_names, novel_above, counts=counts),
                accuracy_by_type=by_type(c, class_names))

def record(unknown, seed, class_names, steps, cal, c, wall_s) -> dict:
    "Score a run's matched cells `c` before and after calibration `cal`; append the record to runs.jsonl"
    T, thr, nab = cal.get('temperature', 1.0), cal.get('unknown_below', 0.0), cal.get('novel_above')
    n = train_counts(OUT/'work'/f'{unknown}_{seed}', class_names)
    r = dict(fold=unknown, seed=seed, class_names=class_names, train_images=n, steps=steps, temperature=T, unknown_below=thr, novel_above=nab,
             calibration=cal, **run_scores(c, class_names, T, thr, nab, n),
             reliability=run_tables(c, T), wall_s=wall_s, when=time.strftime('%Y-%m-%d %H:%M'))
    with open(OUT/'runs.jsonl', 'a') as f: f.write(json.dumps(r) + '\n')
    a = r['after']
    print(f"unknown {unknown:<6} seed {seed}: known acc {a['accuracy_closed']:.3f} (open {a['accuracy_open']:.3f}; types of >= 2 images {a['accuracy_2plus']:.3f}), ECE {r['before']['ece']:.3f} -> "
          f"{a['ece']:.3f}, AUROC {a['auroc_lolo']:.3f} (Usiigaci {a['auroc_usiigaci']:.3f}; by probability {a['auroc_lolo_prob']:.3f} / "
          f"{a['auroc_usiigaci_prob']:.3f}), T {T}, open set {'novelty > %s' % nab if nab is not None else 'probability < %s' % thr}", flush=True)
    return r

def rescore(unknown:str, seed:int) -> dict:
    "Calibrate a finished run's model again with the current `calibrate_types` and score it anew (no training)"
    from cellseg_nb.train import calibrate_types
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.data.sources import MaskFolderSource
    work = OUT/'work'/f'{unknown}_{seed}'; t0 = time.perf_counter()
    model = load_model(work/'run/best'); class_names = model.config['class_names']
    _, tests = fold_items(unknown, work/'data')
    cal = calibrate_types(model, MaskFolderSource(str(work/'data/val'), class_names=tuple(class_names)), model.config.get('normalisation') or {})
    model.config['postprocess'].update(type_temperature=cal['temperature'], unknown_below=cal['unknown_below'], type_prototypes=cal['prototypes'],
                                       type_precision=cal['precision'], novel_above=cal['novel_above'])
    c = cells_of(model, tests, class_names)
    np.savez_compressed(OUT/'cells'/f'{unknown}_{seed}.npz', **c)
    steps = done().get((unknown, seed), {}).get('steps')
    return record(unknown, seed, class_names, steps, {k: v for k, v in cal.items() if k not in ('prototypes', 'precision')}, c, time.perf_counter() - t0)

def done() -> dict:
    f = OUT/'runs.jsonl'
    return {(r['fold'], r['seed']): r for r in map(json.loads, f.read_text().splitlines())} if f.exists() else {}

def run_tables(c:dict, temperature:float) -> dict:
    "A run's reliability tables (records) of its known cells, before (temperature 1) and after calibration"
    from cellseg_nb.metrics import reliability_table
    from cellseg_nb.postprocess import soften
    kn, out = c['domain'] == 'known', {}
    for when, T in (('before', 1.0), ('after', temperature)):
        q = soften(c['p'][kn], T); out[when] = reliability_table(q.max(1), q.argmax(1) == c['true'][kn]).to_dict('records')
    return out

def pool_tables(tables) -> list:
    "One reliability table (records) of several runs' tables: cells summed, confidence and accuracy weighted by cells"
    import pandas as pd
    ts = [pd.DataFrame(t) for t in tables]; n = sum(t.n for t in ts)
    w = lambda col: sum(t.n * t[col] for t in ts) / np.maximum(n, 1)
    return pd.DataFrame(dict(lo=ts[0].lo, hi=ts[0].hi, n=n, confidence=w('confidence'), accuracy=w('accuracy'))).to_dict('records')

def key(r) -> tuple: return (r['fold'], int(r['seed']))

def report() -> dict:
    """Mean +- sd over folds and seeds (and per fold) of every score, before and after calibration; reliability tables pooled.
    Runs of earlier sessions that are in the results file but not in runs.jsonl (their `bench/out` is gone) are kept,
    so seeds can be added one session at a time; a re-run of the same fold and seed replaces its earlier record."""
    runs = list(done().values())
    if not runs: sys.exit(f"no runs in {OUT/'runs.jsonl'}: run the benchmark first")
    from realdata import ms   # over the runs where the score exists (synth-open has no Usiigaci cells)
    prev = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    have = {key(r) for r in runs}
    runs += [r for o in (prev, prev.get('synth_open', {})) for r in o.get('runs', []) if key(r) not in have]
    def agg(rs): return {when: {k: ms([r[when].get(k, float('nan')) for r in rs]) for k in rs[0][when] if not k.startswith('n_')} for when in ('before', 'after')}
    for r in runs:   # from the kept cells: every score with the current code, the two unknown scores combined (not the product's rule), the reliability tables
        f = OUT/'cells'/f"{r['fold']}_{r['seed']}.npz"
        if not f.exists(): continue   # a run of an earlier session: its record keeps them
        c = dict(np.load(f))
        if 'class_names' in r:   # scored again at the run's calibration, so records of older code gain the newer scores
            n = r.get('train_images') or train_counts(OUT/'work'/f"{r['fold']}_{r['seed']}", r['class_names'])
            r.update(train_images=n, **run_scores(c, r['class_names'], r['temperature'], r.get('unknown_below', 0.0), r.get('novel_above'), n))
        for d in ('lolo', 'usiigaci'): r['after'][f'auroc_{d}_combined'] = combined_auroc(c, r['temperature'], d)
        r['reliability'] = run_tables(c, r['temperature'])
    def summary(rs, before:dict):
        "`before`: this protocol's part of the earlier results file, whose pooled tables cover its runs without tables of their own"
        legacy = sorted(key(r) for r in rs if 'reliability' not in r)
        blk = before.get('reliability_legacy') or (dict(runs=sorted(key(r) for r in before.get('runs', [])), **before['reliability'])
                                                    if before.get('reliability') and not any('reliability' in r for r in before.get('runs', [])) else None)
        use_blk = bool(legacy) and blk is not None and sorted(map(tuple, blk['runs'])) == legacy
        if legacy and not use_blk: print(f"no reliability table for runs {legacy}: the pooled diagram leaves them out", flush=True)
        rel = {when: pool_tables([r['reliability'][when] for r in rs if 'reliability' in r] + ([blk[when]] if use_blk else []))
               for when in ('before', 'after')}
        out = dict(runs=rs, pooled=agg(rs), per_fold={f: agg([r for r in rs if r['fold'] == f]) for f in dict.fromkeys(r['fold'] for r in rs)},
                   reliability=rel, reliability_runs=sorted(key(r) for r in rs if 'reliability' in r or use_blk))
        if use_blk: out['reliability_legacy'] = dict(runs=legacy, before=blk['before'], after=blk['after'])
        return out
    lc, sy = [r for r in runs if r['fold'] in LINES], [r for r in runs if r['fold'] in SYNTH]
    out = dict(protocol='lc5-open', steps=STEPS, **(summary(lc, prev) if lc else {}), when=time.strftime('%Y-%m-%d'))
    if sy: out['synth_open'] = dict(protocol='synth-open', **summary(sy, prev.get('synth_open', {})))   # one morphology held out; 'lolo' = its cells
    RESULTS.parent.mkdir(parents=True, exist_ok=True); RESULTS.write_text(json.dumps(out, indent=1))
    for name, o in (('lc5-open', out), ('synth-open', out.get('synth_open', {}))):
        for when in ('before', 'after') if 'pooled' in o else ():
            print(name, when, ' '.join(f"{k} {v['mean']:.3f}±{v['sd']:.3f}" for k, v in o['pooled'][when].items()))
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--folds', nargs='+', default=list(LINES), choices=LINES + SYNTH, help='the line (lc5-open) or morphology (synth-open) held out as unknown')
    ap.add_argument('--seeds', nargs='+', type=int, default=[0])
    ap.add_argument('--report', action='store_true', help='pool the finished runs into bench/results/celltypes.json')
    ap.add_argument('--rescore', action='store_true', help='calibrate and score the finished runs again with the current code (no training)')
    a = ap.parse_args(argv)
    if a.report: return report()
    if a.rescore:
        for seed in a.seeds:
            for f in a.folds:
                if (OUT/'work'/f'{f}_{seed}'/'run/best/config.json').exists(): rescore(f, seed)
        return report()
    (OUT/'cells').mkdir(parents=True, exist_ok=True)
    have = done()
    for seed in a.seeds:
        for f in a.folds:
            if (f, seed) not in have: run_one(f, seed)
    return report()

if __name__ == '__main__': main()
