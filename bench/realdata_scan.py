"""Images from another microscope: does `segment`'s sharpness gate fire where it should, and what does the scan of sizes it opens give?

`cellseg train` records the `sharpness` range of its training images (`config['image_sharpness']`); `segment` treats an
image more than `SMOOTHER_BY` below it as from another microscope or magnification and keeps, of the passes at
`SCAN_SCALES` (x the model's scale), the one whose cells its neighbouring sizes find too (`steadiest`; until 2026-12-07
the best separated, `separated_area`), instead of the two-pass size matching.
1. `sharpness` of every image of ../shared: LIVECell's 5 annotated and 32 unannotated images (8 cell lines), Usiigaci's 45.
2. The kept models of `bench/realdata.py` (`bench/out/realdata/work/*_ours*`, those of this checkout), given the range
   of their fold's training images as `cellseg train` now records it (models trained before it lack it): for every
   held-out image whether the gate fires, and, for the folds where it fires, the held-out images segmented again by the
   product (`cellseg_nb.predict.predict`, as `bench/realdata.py` segments them) and scored as it scores (F1@0.5, mSA,
   COCO mask AP), paired with the same model's recorded row (the two passes). Folds where it fires on no image are
   segmented as before by construction and are not run again.
3. With `--zoom Z`, a check on another "microscope" that is not Usiigaci: the held-out images of the kept LIVECell
   models (`lc5-loio`, `lc5-lolo`) enlarged Z times (bilinear; the labels nearest), as a higher magnification would show
   them, segmented with the gate (the product) and without it (size matching), paired.
Each finished model is appended to `bench/out/realdata_scan/runs.jsonl` (`zoom.jsonl`; a stopped run resumes) with the
scan's `criterion` (`CRITERION`: a new one runs every model again); the report is `bench/results/realdata_scan.json`,
the rows of earlier criteria under `earlier`.

    python bench/realdata_scan.py           # about 2 CPU-minutes per model whose gate fires on Usiigaci's 5 images
    python bench/realdata_scan.py --zoom 2 --match 15min
    python bench/realdata_scan.py --zoom 1 --always --match 15min   # the scan on every image, not only gated ones
    python bench/realdata_scan.py --report
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
OUT = ROOT/'bench/out/realdata_scan'
RESULTS = ROOT/'bench/results/realdata_scan.json'
WORK = ROOT/'bench/out/realdata/work'

from realdata import ms, shared, lc5_items, usi_items, folds, items_of, score, label_scores, RUNS as REALDATA_RUNS

def image_sharpness() -> dict:
    "`sharpness` of every image of ../shared, by group: LIVECell annotated / unannotated (by cell line) / Usiigaci"
    from cellseg_nb.infer import sharpness
    from cellseg_nb.core import read_image
    lc = {n: sharpness(img) for n, img, _ in lc5_items()}
    un = {p.stem: sharpness(read_image(p)) for p in sorted((shared()/'livecell-sample/images').rglob('*.tif')) if p.stem not in lc}
    usi = {n: sharpness(img) for n, img, _ in usi_items(range(1, 46))}
    span = lambda d: dict(min=round(min(d.values()), 3), max=round(max(d.values()), 3), n=len(d))
    lines = sorted({n.split('_')[0] for n in un})
    return dict(livecell_annotated=dict(span(lc), images={k: round(v, 3) for k, v in lc.items()}),
                livecell_unannotated=dict(span(un), by_line={l: span({k: v for k, v in un.items() if k.startswith(l + '_')}) for l in lines}),
                usiigaci=dict(span(usi), images={k: round(v, 3) for k, v in usi.items()}))

def read_rows(f:Path) -> list:
    "The rows of a JSON-lines file, one dict per line (none where the file does not exist yet)"
    return [json.loads(l) for l in f.read_text().splitlines() if l.strip()] if f.exists() else []

def append_row(f:Path, r:dict):
    "Append one finished row to a JSON-lines file, so that a stopped bench resumes after it"
    with open(f, 'a') as fh: fh.write(json.dumps(r) + '\n')

def kept_runs(pattern:str, match=()) -> list:
    "The kept models' work folders (`WORK`) matching the glob `pattern`, with a model, whose names contain all of `match`"
    return [run for run in sorted(WORK.glob(pattern)) if all(s in run.name for s in match) and (run/'run/best').exists()]

def parse(run:str) -> tuple:
    "(protocol, fold, method, budget, seed) of a work folder `{protocol}_{fold}_{method}_{budget}_{seed}`"
    p = run.split('_'); return p[0], '_'.join(p[1:-3]), p[-3], p[-2], int(p[-1])

def recorded() -> dict:
    "The rows `bench/realdata.py` recorded for the kept models, by work-folder name"
    rows = read_rows(REALDATA_RUNS)
    return {f"{r['protocol']}_{r['fold']}_{r['method']}_{r['budget']}_{r['seed']}": r for r in rows}

SCORES = ('f1', 'msa', 'ap', 'n_pred', 'n_true')   # what each model's rows keep of `score`
CRITERION = 'steadiest'   # how the product's scan picks its size now (`cellseg_nb.infer.scanned`); rows of 'steadiest+fg0.8' were the scan with a foreground of at least 0.8 (not kept, `bench/realdata_smoothfg.py`)

def criterion(r:dict) -> str: return r.get('criterion', 'separated_area')   # rows written before the key picked by separation

def gated_model(run:Path) -> tuple:
    "`(protocol, fold, method, budget, seed)`, the kept model with its fold's training range as `config['image_sharpness']`, that range, the one it recorded itself, and the held-out names"
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.train import sharpness_range
    from cellseg_nb.data.sources import ArraySource
    key = parse(run.name); tr, _, te = folds(key[0])[key[1]]
    m = load_model(run/'run/best'); own = m.config.get('image_sharpness')   # a model trained since `cellseg train` records it
    tr_items = items_of(key[0], tr)
    m.config['image_sharpness'] = rng = sharpness_range(ArraySource([img for _, img, _ in tr_items], [lab for *_, lab in tr_items]))
    return key, m, rng, own, te

def product_scores(m, items, **kw) -> tuple:
    "`(scores, labels)` of `items` segmented by the product (`predict`, as `bench/realdata.py` segments them; `kw`: its options)"
    from cellseg_nb.predict import predict
    preds = [(lab, label_scores(lab, cells)) for lab, cells in (predict(m, img, progress=False, **kw) for _, img, _ in items)]
    s = score(items, preds); return {k: s[k] for k in SCORES}, [lab for lab, _ in preds]

def gate_row(run:Path, key:tuple, m, items, **extra) -> dict:
    "The row's common part: the run, whether the gate fires on each of `items` and their sharpness"
    from cellseg_nb.infer import sharpness, smoother_than_training
    return dict(run=run.name, **dict(zip(('protocol', 'fold', 'method', 'budget', 'seed'), key)), criterion=CRITERION, **extra,
                test_sharpness=[round(sharpness(img), 3) for _, img, _ in items], fired=[smoother_than_training(m, img) for _, img, _ in items])

def one(run:Path, before:dict) -> dict:
    "Gate and, where it fires, the product's segmentation of the held-out images, scored and paired with `before`"
    from cellseg_nb.data.targets import median_diameter
    key, m, rng, own, te = gated_model(run); items = items_of(key[0], te)
    r = gate_row(run, key, m, items, train_range=rng, recorded_range=own)
    r['before'] = {k: before.get(k) for k in SCORES}
    if any(r['fired']):
        t = time.perf_counter(); r['after'], labs = product_scores(m, items)
        r.update(found_d=[round(float(median_diameter([lab])), 2) if lab.max() else 0.0 for lab in labs],
                 true_d=[round(float(median_diameter([lab])), 2) for *_, lab in items], seconds=round(time.perf_counter() - t, 1))
    return r

def zoomed(run:Path, z:float, always:bool=False) -> dict:
    "A LIVECell model's held-out images enlarged `z`x (a higher magnification, digitally): whether the gate fires, and the scores with it (the product) and without it (size matching), paired; `always`: the scan on every image"
    import cv2
    from scipy import ndimage as ndi
    key, m, rng, _, te = gated_model(run)
    items = [(n, cv2.resize(img, None, fx=z, fy=z, interpolation=cv2.INTER_LINEAR), ndi.zoom(lab, z, order=0)) for n, img, lab in items_of(key[0], te)]
    if always: m.config['image_sharpness'] = [np.inf, np.inf]   # every image counts as smoother
    r = gate_row(run, key, m, items, zoom=z, always=always, train_range=rng)
    r['with_gate'] = product_scores(m, items)[0]
    del m.config['image_sharpness']; r['without_gate'] = product_scores(m, items)[0] if any(r['fired']) else r['with_gate']
    return r

def zoom_report(rows:list) -> dict:
    "Per zoom: models, images, images gated, and the paired change (with minus without the gate) over the models"
    out = {}
    for z, al in sorted({(r['zoom'], r.get('always', False)) for r in rows}):
        rs = [r for r in rows if r['zoom'] == z and r.get('always', False) == al]
        out[f"{z}{' always' if al else ''}"] = dict(models=len(rs), images=sum(len(r['fired']) for r in rs), fired=sum(sum(r['fired']) for r in rs),
                           **{f'{k}_{w}': ms([r[w][k] for r in rs]) for k in ('f1', 'ap') for w in ('without_gate', 'with_gate')},
                           gain_f1=ms([r['with_gate']['f1'] - r['without_gate']['f1'] for r in rs]),
                           gain_ap=ms([r['with_gate']['ap'] - r['without_gate']['ap'] for r in rs]))
    return out

def report(rows:list, sharp:dict) -> dict:
    "Per protocol: the folds where the gate fired and the paired change it made (mean +- sd over models)"
    by = {}
    for r in rows:
        g = by.setdefault(r['protocol'], dict(models=0, images=0, fired=0, changed=[]))
        g['models'] += 1; g['images'] += len(r['fired']); g['fired'] += sum(r['fired'])
        if 'after' in r: g['changed'].append(r['run'])
    for p, g in by.items():
        rs = [r for r in rows if r['protocol'] == p and 'after' in r and not r['recorded_range']]   # trained before the gate: paired before/after
        again = [r for r in rows if r['protocol'] == p and 'after' in r and r['recorded_range']]   # trained with it: segmenting again must give the row
        if again: g['trained_with_gate'] = {r['run']: dict(recorded=r['before'], again=r['after'], same_range=r['recorded_range'] == r['train_range']) for r in again}
        if rs: g.update({f'{k}_{w}': ms([r[w][k] for r in rs]) for k in ('f1', 'ap') for w in ('before', 'after')},
                        gain_f1=ms([r['after']['f1'] - r['before']['f1'] for r in rs]), gain_ap=ms([r['after']['ap'] - r['before']['ap'] for r in rs]))
    return dict(sharpness=sharp, by_protocol=by, models=rows, when=time.strftime('%Y-%m-%d'))

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--match', nargs='*', default=[], help='only work folders containing all of these')
    ap.add_argument('--report', action='store_true', help='only write the report from the finished models')
    ap.add_argument('--zoom', type=float, default=None, help="instead: the LIVECell models' held-out images enlarged this much, with and without the gate")
    ap.add_argument('--always', action='store_true', help='with --zoom: the scan on every image (the gate always open), against size matching')
    a = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True); runs_file, zoom_file = OUT/'runs.jsonl', OUT/'zoom.jsonl'
    rows = read_rows(runs_file)
    done = {r['run']: r for r in rows if criterion(r) == CRITERION}
    zall = read_rows(zoom_file)
    zdone = [r for r in zall if criterion(r) == CRITERION]
    if a.zoom and not a.report:
        for run in kept_runs('lc5-lo*_ours*', a.match):
            if any(r['run'] == run.name and r['zoom'] == a.zoom and r.get('always', False) == a.always for r in zdone): continue
            r = zoomed(run, a.zoom, a.always); zdone.append(r); append_row(zoom_file, r)
            print(f"{run.name} x{a.zoom}: fired on {sum(r['fired'])}/{len(r['fired'])}: F1 {r['without_gate']['f1']:.3f} -> {r['with_gate']['f1']:.3f}, "
                  f"AP {r['without_gate']['ap']:.3f} -> {r['with_gate']['ap']:.3f}", flush=True)
    elif not a.report:
        before = recorded()
        for run in kept_runs('*_ours*', a.match):
            if run.name in done: continue
            if run.name not in before: print(f'{run.name}: no recorded row in {REALDATA_RUNS}, skipped'); continue
            r = one(run, before[run.name]); done[run.name] = r; append_row(runs_file, r)
            msg = f"fired on {sum(r['fired'])}/{len(r['fired'])}" + (f": F1 {r['before']['f1']:.3f} -> {r['after']['f1']:.3f}, AP {r['before']['ap']:.3f} -> {r['after']['ap']:.3f}" if 'after' in r else '')
            print(f'{run.name}: {msg}', flush=True)
    earlier = sorted({criterion(r) for r in rows + zall} - {CRITERION})
    out = dict(report(list(done.values()), image_sharpness()), zoom=zoom_report(zdone), criterion=CRITERION,
               earlier={c: dict(by_protocol=report([r for r in rows if criterion(r) == c], None)['by_protocol'], models=[r for r in rows if criterion(r) == c],
                                zoom=zoom_report([r for r in zall if criterion(r) == c])) for c in earlier})
    for c in earlier:   # the same models' images scanned both ways, paired
        old = {r['run']: r for r in rows if criterion(r) == c and 'after' in r}
        pr = [(old[r['run']]['after'], r['after']) for r in done.values() if 'after' in r and r['run'] in old]
        if pr: out['earlier'][c]['paired'] = dict(models=len(pr), **{f'{k}_{w}': ms([p[i][k] for p in pr]) for k in ('f1', 'ap') for i, w in enumerate((c, CRITERION))},
                                                  gain_f1=ms([b['f1'] - a['f1'] for a, b in pr]), gain_ap=ms([b['ap'] - a['ap'] for a, b in pr]))
    RESULTS.write_text(json.dumps(out, indent=1)); print(json.dumps(out['by_protocol'], indent=1))

if __name__ == '__main__': main()
