"""Cell size on real images: how much does matching the cells' size matter, and can the model's own outputs find it?

Re-segments the held-out images of leave-one-line-out with the models `bench/realdata.py` kept
(`bench/out/realdata/work/lc5-lolo_*_ours_dev_*`), and Usiigaci set 41 (another microscope) with the seed-0 models:
- at 7 scales relative to the model's own (`SCALES`), recording F1@0.5, cell count, the cells' median diameter and
  candidate signals for choosing the scale without ground truth (`CRITERIA`: cell scores, map confidences, agreement
  of neighbouring scales, the measured size crossing the training size, the cells' area-weighted separation);
- with the product's automatic two-pass size matching (`diameter=None`) and told the true median diameter (the oracle);
- with the maps of the automatic scale averaged with those of zoomed-out passes (multi-scale fusion).
With `--variants`, only automatic matching and the true diameter, for the kept models of training variants
(`bench/realdata.py --ablation ... --name NAME` keeps `ours[NAME]`), e.g. a wider zoom in training (`variants.jsonl`).
Each finished image is appended to `bench/out/realdata_diameter/runs.jsonl` (maps in `maps/`), so a stopped run
resumes; `--report` writes `bench/results/realdata_diameter.json`: per criterion, the mean F1 of the scale it picks
against automatic matching, the oracle and the best scale of the grid.

    python bench/realdata_diameter.py            # about 40 CPU-minutes on 2 cores
    python bench/realdata_diameter.py --report
    python bench/realdata_diameter.py --variants 'ours[zoom1.5]'   # automatic vs true diameter only; `ours` comes from above
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
OUT = ROOT/'bench/out/realdata_diameter'
RESULTS = ROOT/'bench/results/realdata_diameter.json'
SCALES = (0.32, 0.4, 0.5, 0.63, 0.8, 1.0, 1.25)   # x the model's own scale
CRITERIA = ('area_w_score', 'score_med', 'fg_conf', 'bd_conf', 'agree', 'size_cross', 'sep_area')  # picked scale: the arg-max (size_cross: see `pick`)
FUSIONS = {'a': (0,), 'a+a/1.25': (0, -1), 'a+a/1.6': (0, -2), 'a+a/2': (0, -3)}  # grid steps below the automatic scale's grid point

from realdata import ms   # the benches' one pooling

def f1_of(gt, lab) -> float:
    from cellseg_nb.metrics import match_instances
    m = match_instances(gt, lab, thresholds=(0.5,)); tp, fp, fn = m['tp'][0], m['fp'][0], m['fn'][0]
    return float(2 * tp / max(2 * tp + fp + fn, 1))

from cellseg_nb.infer import separated_area as sep_area   # area-weighted mean `separation` of the cells: what `segment` scans sizes by

def scan_scale(m, img, gt, f, maps_file:Path) -> dict:
    "Segment at `f` x the model's scale: F1, cells, median diameter (image px) and the criteria's raw signals; maps saved for fusion"
    from cellseg_nb.infer import infer_maps, labelled_cells, model_scale
    from cellseg_nb.data.targets import median_diameter
    cfg = m.config
    with model_scale(m, m.scale * f):
        maps = infer_maps(m, img)
        fg, bd, di = (maps.maps[h].astype(np.float32) for h in ('fg', 'boundary', 'dist'))
        lab, cells = labelled_cells(maps, cfg.get('postprocess'), 1024, 128, cfg.get('class_names'))
    np.savez_compressed(maps_file, lab=lab, fg=(fg * 255).astype(np.uint8), bd=(bd * 255).astype(np.uint8), di=(di * 255).astype(np.uint8))
    s, a = cells['score'].to_numpy(float), cells['area'].to_numpy(float)
    return dict(f1=f1_of(gt, lab), cells=int(len(cells)), d=float(median_diameter([lab])) if lab.max() else 0.0,
                area_w_score=float((s * a).sum() / max(a.sum(), 1)), score_med=float(np.median(s)) if len(s) else 0.0,
                fg_conf=float(np.abs(fg - 0.5).mean() * 2), bd_conf=float(np.abs(bd - 0.5).mean() * 2), sep_area=sep_area(lab, bd))

def fused_f1(maps:list, pp:dict, gt) -> float:
    from cellseg_nb.postprocess import instances_from_probs
    probs = {h: np.mean([z[k].astype(np.float32) / 255 for z in maps], 0) for h, k in (('fg', 'fg'), ('boundary', 'bd'), ('dist', 'di'))}
    return f1_of(gt, instances_from_probs(probs, {k: v for k, v in pp.items() if k not in ('type_temperature', 'unknown_below')})[0])

def auto_oracle(m, img, gt, d:float) -> dict:
    "F1 of the product's automatic two-pass size matching and of the true diameter `d`, with the scale factors each uses"
    from cellseg_nb.infer import segment, second_pass_scale, _segment
    s = second_pass_scale(m, _segment(m, img, m.config.get('postprocess'), 1024, 128, False)[0])
    return dict(auto_f=1.0 if s is None else s / m.scale, auto_f1=f1_of(gt, segment(m, img)[0]),
                oracle_f=m.config['cell_diameter'] / (d * m.scale), oracle_f1=f1_of(gt, segment(m, img, diameter=d)[0]))

def one(run:Path, name:str, img, gt, fold:str, seed:int) -> dict:
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.data.targets import median_diameter
    m = load_model(run/'run/best'); cfg = m.config; d = float(median_diameter([gt]))
    r = dict(fold=fold, seed=seed, image=name, true_cells=int(len(np.unique(gt)) - 1), true_d=d, s0=m.scale,
             target=cfg['cell_diameter'], oracle_f=cfg['cell_diameter'] / (d * m.scale), scales={})
    (OUT/'maps').mkdir(parents=True, exist_ok=True)
    mf = lambda f: OUT/'maps'/f'{fold}_{seed}_{name}_{f}.npz'
    for f in SCALES: r['scales'][str(f)] = scan_scale(m, img, gt, f, mf(f))
    r.update(auto_oracle(m, img, gt, d))
    i = int(np.argmin([abs(np.log(g / r['auto_f'])) for g in SCALES]))
    z = [np.load(mf(f)) for f in SCALES]
    r['fusion'] = {k: fused_f1([z[i + o] for o in offs], cfg.get('postprocess') or {}, gt) for k, offs in FUSIONS.items() if i + min(offs) >= 0}
    agree = [f1_of(z[j]['lab'], z[j + 1]['lab']) for j in range(len(SCALES) - 1)]
    for j, f in enumerate(SCALES):   # agreement with the neighbouring scales
        r['scales'][str(f)]['agree'] = float(np.mean([agree[k] for k in (j - 1, j) if 0 <= k < len(agree)]))
    return r

def pick(r:dict, crit:str) -> str:
    "The scale a criterion picks; size_cross: the smallest scale whose cells, as the model sees them, reach 0.9 x the training size"
    sc = r['scales']
    if crit == 'size_cross':
        ok = [f for f in sc if sc[f]['d'] * r['s0'] * float(f) >= 0.9 * r['target'] and sc[f]['cells'] >= 10]
        return min(ok, key=float) if ok else '1.0'
    return max(sc, key=lambda f: sc[f][crit])

def report() -> dict:
    rows = [json.loads(l) for l in open(OUT/'runs.jsonl')]
    for r in rows:   # runs from before `sep_area` was recorded: from their kept maps
        for f, v in r['scales'].items():
            if 'sep_area' not in v:
                z = np.load(OUT/'maps'/f"{r['fold']}_{r['seed']}_{r['image']}_{f}.npz"); v['sep_area'] = sep_area(z['lab'], z['bd'].astype(np.float32) / 255)
    out = dict(images=rows, by_domain={}, when=time.strftime('%Y-%m-%d'))
    for dom, sel in (('livecell_lolo', lambda r: not r['image'].startswith('set')), ('usiigaci', lambda r: r['image'].startswith('set'))):
        rs = [r for r in rows if sel(r)]
        if not rs: continue
        t = dict(auto=ms([r['auto_f1'] for r in rs]), oracle=ms([r['oracle_f1'] for r in rs]),
                 best_of_grid=ms([max(v['f1'] for v in r['scales'].values()) for r in rs]),
                 model_scale=ms([r['scales']['1.0']['f1'] for r in rs]))
        for c in CRITERIA: t[f'pick:{c}'] = ms([r['scales'][pick(r, c)]['f1'] for r in rs])
        for k in FUSIONS: t[f'fusion:{k}'] = ms([r['fusion'][k] for r in rs if k in r['fusion']])
        out['by_domain'][dom] = t
    if (OUT/'variants.jsonl').exists():   # `ours` from the scale study above, on the seeds the variants ran
        vs = [json.loads(l) for l in open(OUT/'variants.jsonl')]; seeds = {r['seed'] for r in vs}
        out['variants'] = variants_report([dict(r, variant='ours') for r in rows if r['seed'] in seeds] + [r for r in vs if r['variant'] != 'ours'])
    RESULTS.write_text(json.dumps(out, indent=1))
    for dom, t in out['by_domain'].items():
        print(dom); [print(f"  {k:22s} F1 {v['mean']:.3f} ± {v['sd']:.3f} (n={v['n']})") for k, v in t.items()]
    for v, t in out.get('variants', {}).items():
        for dom, x in t.items(): print(f"{v:18s} {dom:14s}", '  '.join(f"{k} {y['mean']:.3f} ± {y['sd']:.3f} (n={y['n']})" for k, y in x.items()))
    return out

def variants(names, sets, seeds) -> None:
    "Automatic matching and true diameter only, for the kept models of training variants (`ours`, `ours[NAME]`) -> variants.jsonl"
    from realdata import lc5_items, usi_items, folds, OUT as RD
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.data.targets import median_diameter
    import torch; torch.set_num_threads(2)
    items = {n: (img, lab) for n, img, lab in lc5_items()}; usi = {f'set{s}': (img, lab) for s, (_, img, lab) in zip(sets, usi_items(sets))}
    OUT.mkdir(parents=True, exist_ok=True); out = OUT/'variants.jsonl'
    done = {(r['variant'], r['fold'], r['seed'], r['image']) for r in map(json.loads, open(out))} if out.exists() else set()
    for v in names:
        for seed in seeds:
            for fold in folds('lc5-lolo'):
                run = RD/'work'/f'lc5-lolo_{fold}_{v}_dev_{seed}'
                if not (run/'run/best').exists(): print('no model', run.name); continue
                m = load_model(run/'run/best')
                for n, (img, gt) in [(n, items[n]) for n in folds('lc5-lolo')[fold][2]] + list(usi.items()):
                    if (v, fold, seed, n) in done: continue
                    r = dict(variant=v, fold=fold, seed=seed, image=n, **auto_oracle(m, img, gt, float(median_diameter([gt]))))
                    with open(out, 'a') as f: f.write(json.dumps(r) + '\n')
                    print(v, fold, seed, n, {k: round(x, 3) for k, x in r.items() if k.startswith(('auto', 'oracle'))}, flush=True)

def variants_report(rows:list) -> dict:
    "Per variant and domain: F1 of automatic matching and of the true diameter, and the size error |log(auto_f / oracle_f)|"
    out = {}
    for v in dict.fromkeys(r['variant'] for r in rows):
        for dom, usi in (('livecell_lolo', False), ('usiigaci', True)):
            rs = [r for r in rows if r['variant'] == v and r['image'].startswith('set') == usi]
            if rs: out.setdefault(v, {})[dom] = dict(auto=ms([r['auto_f1'] for r in rs]), oracle=ms([r['oracle_f1'] for r in rs]),
                                                      size_error=ms([abs(np.log(r['auto_f'] / r['oracle_f'])) for r in rs]))
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0]); ap.add_argument('--report', action='store_true')
    ap.add_argument('--variants', nargs='+', help="only automatic vs true diameter, for these kept training variants (e.g. ours 'ours[zoom1.5]')")
    ap.add_argument('--sets', nargs='+', type=int, default=[41], help='Usiigaci sets scored with --variants')
    ap.add_argument('--seeds', nargs='+', type=int, default=[0], help='seeds scored with --variants')
    a = ap.parse_args(argv)
    if a.variants: variants(a.variants, a.sets, a.seeds); return report()
    if a.report: return report()
    from realdata import lc5_items, usi_items, folds, OUT as RD
    import torch; torch.set_num_threads(2)
    items = {n: (img, lab) for n, img, lab in lc5_items()}; usi = {n: (img, lab) for n, img, lab in usi_items([41])}
    OUT.mkdir(parents=True, exist_ok=True); runs = OUT/'runs.jsonl'
    done = {(r['fold'], r['seed'], r['image']) for r in map(json.loads, open(runs))} if runs.exists() else set()
    for run in sorted((RD/'work').glob('lc5-lolo_*_ours_dev_*')):
        fold, seed = run.name.split('_')[1], int(run.name.split('_')[-1])
        tests = [(n, *items[n]) for n in folds('lc5-lolo')[fold][2]] + ([('set41', *usi['set41'])] if seed == 0 else [])
        for n, img, gt in tests:
            if (fold, seed, n) in done: continue
            r = one(run, n, img, gt, fold, seed)
            with open(runs, 'a') as f: f.write(json.dumps(r) + '\n')
            print(fold, seed, n, 'auto', round(r['auto_f1'], 3), 'oracle', round(r['oracle_f1'], 3),
                  {f: round(v['f1'], 3) for f, v in r['scales'].items()}, flush=True)
    return report()

if __name__ == '__main__': main()
