"""Images from another microscope: how strict a foreground should `segment`'s scan use?

On Usiigaci's images (another microscope) the LIVECell-trained models' cells come out about 1.3x the annotated cells'
area at the tuned foreground threshold (0.5): the fg map spills over the halo and joins neighbours. This script
records, for the kept models of `bench/realdata.py` whose held-out images are Usiigaci's (`lc5-usiigaci`), each image's
passes at every `SCAN_SCALES` size and every foreground threshold in `FG` (the model's other tuned thresholds kept):
true positives, false positives and misses at IoU 0.5, the objects found, and each pass's `agreement` with its
neighbouring sizes. It then scores, per model, the steadiest size (what `scanned` keeps) at each threshold, the size and
threshold that agree best with their neighbours (`joint`), and the best pass knowing the truth (`oracle`).
`--split val` runs a model on Usiigaci's validation sets 36-40 instead of the test sets 41-45.
The report also pairs the product with and without a foreground of at least 0.8 on gated images, from the rows
`bench/realdata_scan.py` wrote with the criterion 'steadiest+fg0.8' (the change was tried in `segment` on 2026-12-07
and not kept: it gains on Usiigaci and loses on LIVECell's held-out images enlarged 2x; see the benchmarks page).
Rows: `bench/out/realdata_smoothfg/rows.jsonl` (one per model and split); report: `bench/results/realdata_smoothfg.json`.

    python bench/realdata_smoothfg.py                                 # about 4 CPU-minutes per model
    python bench/realdata_smoothfg.py --match 'steady]_15min_2' --split val
    python bench/realdata_smoothfg.py --report
"""
from __future__ import annotations
import argparse, dataclasses, json, sys, time, warnings
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
OUT = ROOT/'bench/out/realdata_smoothfg'
RESULTS = ROOT/'bench/results/realdata_smoothfg.json'
FG = (0.5, 0.6, 0.7, 0.8, 0.9)

from realdata import ms, items_of, folds
from realdata_scan import gated_model, read_rows, append_row, kept_runs
from realdata_sizes import f1 as f1_of, neighbour_agreement

def one(run:Path, split:str='test') -> dict:
    "Every pass (size x foreground threshold) of one kept model on Usiigaci's test (41-45) or validation (36-40) sets"
    from cellseg_nb.infer import model_params, model_scale, infer_maps, labelled_cells, smoother_than_training, SCAN_SCALES
    from cellseg_nb.metrics import match_instances
    key, m, _, _, te = gated_model(run)
    if split == 'val': te = folds('usiigaci')['41-45'][1]
    p0, s0, names = model_params(m, None, None), m.scale, m.config.get('class_names')
    out = dict(run=run.name, split=split, zoom=1.0, images=[])
    for n, img, gt in items_of('usiigaci', te):
        t, maps = time.perf_counter(), []
        for f in SCAN_SCALES:
            with model_scale(m, s0 * f), warnings.catch_warnings():
                warnings.simplefilter('ignore'); maps.append(infer_maps(m, img, progress=False))
        im = dict(name=n, gated=bool(smoother_than_training(m, img)), fg={})
        for th in FG:
            labs = [labelled_cells(mp, dataclasses.replace(p0, fg_threshold=th), 1024, 128, names, False)[0] for mp in maps]
            rows = []
            for lab in labs:
                mm = match_instances(gt, lab, thresholds=(0.5,))
                rows.append(dict(tp=int(mm['tp'][0]), fp=int(mm['fp'][0]), fn=int(mm['fn'][0]), n=int(len(np.unique(lab)) - 1)))
            for r, a in zip(rows, neighbour_agreement(labs)): r['agree'] = a
            im['fg'][str(th)] = rows
        out['images'].append(im); print(run.name, split, n, f"{time.perf_counter() - t:.0f} s", flush=True)
    return out

def f1(c) -> float: return f1_of(*c)   # (tp, fp, fn) as one array
def steady(rows:list) -> int: return max(range(1, len(rows) - 1), key=lambda i: rows[i]['agree'])   # as `steadiest`: never the first or last
PICKS = {**{f'fg{t}': (lambda t: lambda im: (t, steady(im['fg'][t])))(str(t)) for t in FG},   # the steadiest size at one threshold
         'joint': lambda im: max(((t, i) for t in im['fg'] for i in range(1, len(im['fg'][t]) - 1)), key=lambda x: im['fg'][x[0]][x[1]]['agree']),
         'oracle': lambda im: max(((t, i) for t in im['fg'] for i in range(len(im['fg'][t]))), key=lambda x: f1([im['fg'][x[0]][x[1]][k] for k in ('tp', 'fp', 'fn')]))}

def scores(r:dict) -> dict:
    "Pooled F1@0.5 of one row's images under each pick"
    out = {}
    for n, pick in PICKS.items():
        c = np.zeros(3)
        for im in r['images']: t, i = pick(im); c += [im['fg'][t][i][k] for k in ('tp', 'fp', 'fn')]
        out[n] = round(f1(c), 4)
    return out

def product_pairs() -> dict:
    "The product with and without the stricter foreground (`bench/realdata_scan.py` rows of criterion 'steadiest+fg0.8' against 'steadiest'), paired per model: Usiigaci 41-45 and LIVECell's held-out images enlarged 2x where gated"
    scan = ROOT/'bench/out/realdata_scan'; out = {}
    def rows(f): return read_rows(scan/f)
    usi = [r for r in rows('runs.jsonl') if r['protocol'] == 'lc5-usiigaci' and 'after' in r]
    zoom = [r for r in rows('zoom.jsonl') if r.get('zoom') == 2.0 and not r.get('always') and any(r['fired'])]
    for name, rs, key in (('usiigaci', usi, 'after'), ('livecell_x2_gated', zoom, 'with_gate')):
        by = {}
        for r in rs: by.setdefault(r['run'], {})[r.get('criterion')] = r[key]
        for r in rs:   # a model trained with the steadiest size: its recorded row is the steadiest's
            if name == 'usiigaci' and r.get('criterion') == 'steadiest+fg0.8' and 'steadiest' not in by[r['run']] and 'steady]' in r['run']: by[r['run']]['steadiest'] = r['before']
        pairs = {k: {c: {m: round(v[c][m], 4) for m in ('f1', 'msa', 'ap', 'n_pred')} for c in ('steadiest', 'steadiest+fg0.8')} for k, v in by.items() if 'steadiest' in v and 'steadiest+fg0.8' in v}
        g = {}
        for b in ('15min', 'dev'):
            d = [(p['steadiest+fg0.8']['f1'] - p['steadiest']['f1'], p['steadiest+fg0.8']['ap'] - p['steadiest']['ap']) for k, p in pairs.items() if f'_{b}_' in k]
            if d: g[b] = dict(gain_f1=ms([x for x, _ in d]), gain_ap=ms([y for _, y in d]), better=sum(x > 0.005 for x, _ in d), worse=sum(x < -0.005 for x, _ in d))
        out[name] = dict(models=pairs, **g)
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--match', nargs='*', default=[], help='only work folders containing all of these')
    ap.add_argument('--split', default='test', choices=['test', 'val'])
    ap.add_argument('--report', action='store_true')
    a = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True); f_rows = OUT/'rows.jsonl'
    rows = read_rows(f_rows)
    if not a.report:
        for run in kept_runs('lc5-usiigaci_*_ours*', a.match):
            if any(r['run'] == run.name and r['split'] == a.split for r in rows): continue
            r = one(run, a.split); rows.append(r); append_row(f_rows, r)
    per = [dict(run=r['run'], split=r['split'], **scores(r)) for r in rows]
    test = [p for p in per if p['split'] == 'test']; base = 'fg0.5'
    gain = {b: {n: ms([p[n] - p[base] for p in test if f'_{b}_' in p['run']]) for n in PICKS if n != base} for b in ('15min', 'dev')}   # per budget
    pp = product_pairs()
    RESULTS.write_text(json.dumps(dict(fg=list(FG), models=per, gain_over_fg0_5_test=gain, product_paired=pp, when=time.strftime('%Y-%m-%d')), indent=1))
    for p in per: print(p['run'], p['split'], ' '.join(f"{n} {p[n]:.3f}" for n in PICKS))
    for b, gs in gain.items():
        for n, g in gs.items(): print(f"{b}: {n} - fg0.5 on test: {g['mean']:+.3f} +- {g['sd']:.3f} ({g['n']} models)")
    for n, g in pp.items():
        for b in ('15min', 'dev'):
            if b in g: print(f"product, {n}, {b}: F1 {g[b]['gain_f1']['mean']:+.3f} +- {g[b]['gain_f1']['sd']:.3f}, AP {g[b]['gain_ap']['mean']:+.3f} +- {g[b]['gain_ap']['sd']:.3f} ({g[b]['gain_f1']['n']} models; better {g[b]['better']}, worse {g[b]['worse']})")

if __name__ == '__main__': main()
