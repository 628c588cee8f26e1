"""A new cell line with one annotated image (or another microscope with five): `cellseg tune` on them, with and without a floor on the cell score.

A user whose cell line the model never saw annotates one image of it and runs `cellseg tune`. This measures what that
is worth on leave-one-line-out BT474 (trained on MCF7 and Huh7, `bench/realdata.py`'s lc5-lolo fold), with the tuning
image kept apart from the scored one: tune on BT474_B3, score BT474_C3, and the other way round, on each kept model
(`bench/out/realdata/work/lc5-lolo_BT474_ours_<budget>_<seed>`); likewise held-out MCF7 (F4 and G4). Searches (`realdata_tune.product`: the maps computed
once, at the tuning image's median cell diameter, which `cellseg predict` then uses for the scored image too):
- `wide`: `cellseg tune`'s default search (`TUNE_GRID`, which has no `min_score`);
- `wide+floor`: the same and the floor on the cell score (`PostprocessParams.min_score`, `FLOORS`), StarDist's
  `prob_thresh`: where ours over-splits a new line, the pieces carry low scores.
Each records F1@0.5, mSA and COCO mask AP on the scored image with the model's own post-processing (`scored_default`)
and with the chosen one (`scored_tuned`), the untuned product (the automatic size matching: the run's kept predictions),
and the scored image segmented with the chosen thresholds at its own automatic size (`scored_tuned_auto`).
The same searches on another microscope: a LIVECell-5 model (`lc5-usiigaci_41-45_...`) tuned on Usiigaci sets 36-40 and
scored on 41-45, as `bench/realdata_tune.py` does (no automatic-size columns there: that size fails on this microscope).
Writes `bench/results/realdata_linetune.json`; `--report` prints mean ± sd over the models and directions, paired, per domain.

    python bench/realdata_linetune.py lc5-lolo_BT474_ours_15min_0 lc5-lolo_BT474_ours_15min_1   # about 2 CPU-minutes a model
    python bench/realdata_linetune.py 'lc5-usiigaci_41-45_ours[r4]_dev_0'   # 3 to 7 CPU-minutes
    python bench/realdata_linetune.py --report
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
RESULTS = ROOT/'bench/results/realdata_linetune.json'
FLOORS = (0.0, 0.1, 0.2, 0.3, 0.4)   # `min_score` values searched (0: every cell kept, the default)
DIRECTIONS = {'BT474': (('BT474_B3', 'BT474_C3'), ('BT474_C3', 'BT474_B3')),   # held-out line: (tuning image, scored image), by their fold names
              'MCF7': (('MCF7_F4', 'MCF7_G4'), ('MCF7_G4', 'MCF7_F4'))}
USIIGACI = (('set36-40', 'set41-45'),)   # LIVECell-5 models on another microscope: `realdata_tune`'s tuning and scored sets

def searches() -> dict:
    "{name: grid}: `cellseg tune`'s default search, and the same with the floor"
    from cellseg_nb.tune import TUNE_GRID
    return {'wide': TUNE_GRID, 'wide+floor': {**TUNE_GRID, 'min_score': FLOORS}}

def item(name:str):
    "The (name, image, labels) of the LIVECell-5 image of leave-one-image-out fold `name` (e.g. BT474_B3)"
    import realdata as rd
    return rd.items_of('lc5-loio', rd.folds('lc5-loio')[name][2])[0]

def auto_size(m, it, chosen:dict) -> dict:
    "F1, mSA, AP of image `it` segmented as `cellseg predict` does without a stored diameter (the automatic size matching), `chosen` over the model's thresholds"
    import dataclasses
    from realdata_tune import f1_msa_ap
    import realdata as rd
    from cellseg_nb.infer import segment, model_params
    lab, cells = segment(m, it[1], params=dataclasses.replace(model_params(m), **chosen))
    return f1_msa_ap([it], [(lab, rd.label_scores(lab, cells))])

def run_model(name:str) -> dict:
    "Both directions of one kept model: `realdata_tune.product` of each search"
    import realdata as rd
    from realdata_tune import product, TUNE, TEST
    from realdata_twopass import kept_model
    protocol, fold, m = kept_model(name)
    if not ((protocol == 'lc5-lolo' and fold in DIRECTIONS) or (protocol, fold) == ('lc5-usiigaci', '41-45')):
        raise ValueError(f"{name}: expected a leave-one-line-out model of a line with two images ({', '.join(f'lc5-lolo_{k}_...' for k in DIRECTIONS)}) "
                         "or a LIVECell-5 -> Usiigaci one (lc5-usiigaci_41-45_...)")
    usi = protocol == 'lc5-usiigaci'
    out = {}
    for tu, te in (USIIGACI if usi else DIRECTIONS[fold]):
        tui, tei = (rd.items_of('usiigaci', x) for x in (TUNE, TEST)) if usi else ([item(tu)], [item(te)])
        r = product(m, tui, tei, searches())
        out[f'{tu}->{te}'] = {k: {f: v[f] for f in ('image_diameter', 'chosen', 'before', 'after', 'scored_default', 'scored_tuned', 'n_cells')} for k, v in r.items()}
        if not usi:   # the automatic size is far off on the other microscope (benchmarks page): not scored there (1022 x 1024 images)
            for k, v in out[f'{tu}->{te}'].items(): v['scored_tuned_auto'] = auto_size(m, item(te), v['chosen'])
            out[f'{tu}->{te}']['untuned_auto'] = auto_size(m, item(te), {})
        print(f"{name} {tu}->{te}: " + ', '.join(f"{k} F1 {v['scored_tuned']['f1']:.3f} AP {v['scored_tuned']['ap']:.3f} (chosen {v['chosen']})" for k, v in out[f'{tu}->{te}'].items() if k in r), flush=True)
    return out

def record(name:str, r:dict):
    res = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    res.update(floors=list(FLOORS), directions={k: [list(d) for d in v] for k, v in DIRECTIONS.items()})
    res.setdefault('runs', {})[name] = dict(r, when=time.strftime('%Y-%m-%d %H:%M'))
    RESULTS.write_text(json.dumps(res, indent=1))

def untuned(name:str, scored:str) -> dict|None:
    "F1, mSA and AP of the untuned product on image `scored`, from the model's run in bench/out/realdata (its predictions), else None"
    import realdata as rd
    protocol, fold, rest = name.split('_', 2); method, budget, seed = rest.rsplit('_', 2)
    p = rd.OUT/'preds'/f'{protocol}_{fold}_{method}_{budget}_{seed}.npz'
    if not p.exists(): return None
    if protocol == 'lc5-usiigaci': return None   # scored over five images: `realdata.json` has the pooled row
    z = np.load(p); names = [n for n, *_ in rd.items_of(protocol, rd.folds(protocol)[fold][2])]
    it = item(scored); i = names.index(it[0])
    return {k: round(v, 4) for k, v in rd.score([it], [(z[f'labels_{i}'], z[f'scores_{i}'])]).items() if k in rd.SCORE_KEYS[1:4]}

def report() -> dict:
    "Per model and direction: untuned, tuned without and with the floor; the floor's gain paired, mean ± sd"
    from realdata import ms
    res = json.loads(RESULTS.read_text()); rows = []
    for name, r in sorted(res['runs'].items()):
        for d, v in r.items():
            if d == 'when': continue
            rows.append(dict(model=name, direction=d, untuned=untuned(name, d.split('->')[1]), default=v['wide']['scored_default'],
                             tuned=v['wide']['scored_tuned'], tuned_floor=v['wide+floor']['scored_tuned'], floor=v['wide+floor']['chosen'].get('min_score', 0.0),
                             untuned_auto=v.get('untuned_auto'), tuned_auto=v['wide'].get('scored_tuned_auto'), tuned_floor_auto=v['wide+floor'].get('scored_tuned_auto')))
    cols = ('untuned', 'default', 'tuned', 'tuned_floor', 'untuned_auto', 'tuned_auto', 'tuned_floor_auto')
    def summary(rs):
        return dict(n=len(rs), means={col: {k: ms([x[col][k] for x in rs if x[col]]) for k in ('f1', 'msa', 'ap')} for col in cols},
                    floor_gain={k: ms([x['tuned_floor'][k] - x['tuned'][k] for x in rs]) for k in ('f1', 'ap')},
                    floor_gain_auto_size={k: ms([x['tuned_floor_auto'][k] - x['tuned_auto'][k] for x in rs if x['tuned_auto']]) for k in ('f1', 'ap')})
    by = {dom: summary([x for x in rows if x['model'].startswith(pre)]) for dom, pre in [*((k, f'lc5-lolo_{k}_') for k in DIRECTIONS), ('usiigaci', 'lc5-usiigaci')]}
    res['summary'] = dict(rows=rows, **{dom: v for dom, v in by.items() if v['n']}, when=time.strftime('%Y-%m-%d %H:%M'))
    RESULTS.write_text(json.dumps(res, indent=1))
    for x in rows:
        f = lambda s: f"{s['f1']:.3f} / {s['ap']:.3f}" if s else '-'
        print(f"{x['model']:<30} {x['direction']:<22} untuned {f(x['untuned'])}  own pp {f(x['default'])}  tuned {f(x['tuned'])}  +floor {f(x['tuned_floor'])} (floor {x['floor']})"
              f"  | automatic size: untuned {f(x['untuned_auto'])} tuned {f(x['tuned_auto'])} +floor {f(x['tuned_floor_auto'])}")
    for dom, v in by.items():
        if not v['n']: continue
        print(dom, {c: {k: round(x['mean'], 3) for k, x in d.items()} for c, d in v['means'].items()})
        print('  floor gain', {k: f"{x['mean']:+.3f} +- {x['sd']:.3f}" for k, x in v['floor_gain'].items()},
              'with the automatic size', {k: f"{x['mean']:+.3f} +- {x['sd']:.3f}" for k, x in v['floor_gain_auto_size'].items()})
    return res['summary']

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('models', nargs='*', help='kept leave-one-line-out BT474 or MCF7 models, e.g. lc5-lolo_BT474_ours_15min_0, or LIVECell-5 -> Usiigaci ones')
    ap.add_argument('--report', action='store_true')
    a = ap.parse_args(argv)
    for name in a.models: record(name, run_model(name))
    if a.report or not a.models: report()

if __name__ == '__main__': main()
