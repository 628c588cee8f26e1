"""Another microscope: why a model trained on LIVECell-5 fails on Usiigaci, and what telling it the cell size is worth.

Re-segments Usiigaci sets 41-45 with a model `bench/realdata.py` kept for the `lc5-usiigaci` protocol (trained on
the 5 LIVECell images; `bench/out/realdata/work/lc5-usiigaci_41-45_<method>_<budget>_<seed>`), paired on that one model:
- at the model's own scale (the first pass), with the product's automatic two-pass size matching (`segment`'s
  default), and told each image's true median cell diameter (`--diameter`, the oracle);
- each at the seed peak heights `HS` (`--seed-h`; the default `PostprocessParams.seed_h` is 0.05).
Records per image the true and the first pass's measured diameter and the cell counts; writes
`bench/results/realdata_cross.json` (pooled F1@0.5 and object counts per setting), one entry per model
(`<method>_<budget>_<seed>`).

    python bench/realdata_cross.py --budget 15min --seed 0     # about 12 CPU-minutes on 2 cores
    python bench/realdata_cross.py --budget dev --method 'ours[centre]'   # an ablation's model (`--name centre`)
"""
from __future__ import annotations
import argparse, dataclasses, json, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
RESULTS = ROOT/'bench/results/realdata_cross.json'
HS = (0.05, 0.1, 0.2, 0.3)   # seed peak heights

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--budget', default='15min'); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--method', default='ours', help="the kept model's method name, e.g. 'ours[centre]' for an ablation row")
    a = ap.parse_args(argv)
    import realdata as rd
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.infer import infer_maps, model_scale, labelled_cells, model_params, second_pass_scale, matched_scale
    from cellseg_nb.data.targets import median_diameter
    from cellseg_nb.metrics import match_instances, object_scores
    run = rd.OUT/'work'/f'lc5-usiigaci_41-45_{a.method}_{a.budget}_{a.seed}'/'run/best'
    if not run.exists(): sys.exit(f"{run} not found: run `python bench/realdata.py --folds lc5-usiigaci:41-45 --methods ours --budget {a.budget} --seeds {a.seed}` "
                                  "first (with the ablation's --ablation and --name for another method)")
    m = load_model(run); s0, pp = m.scale, model_params(m)
    labs, images = {}, []
    def pass_at(img, scale):
        with model_scale(m, scale): mp = infer_maps(m, img, tta='flips', progress=False)
        return {h: labelled_cells(mp, dataclasses.replace(pp, seed_h=h))[0] for h in sorted({*HS, pp.seed_h})}
    for name, img, gt in rd.items_of('lc5-usiigaci', rd.folds('lc5-usiigaci')['41-45'][2]):
        d = median_diameter([gt])
        first = pass_at(img, s0)
        s2 = second_pass_scale(m, first[pp.seed_h])   # `segment`'s choice from its first pass (at the tuned height)
        got = dict(first=first, automatic=pass_at(img, s2) if s2 else first, told_diameter=pass_at(img, matched_scale(m, d)))
        for k, v in got.items():
            for h, lab in v.items(): labs.setdefault((k, h), []).append((gt, lab))
        images.append(dict(image=name, true_diameter=round(d, 1), first_pass_diameter=round(median_diameter([first[pp.seed_h]]), 1),
                           model_scale=s0, second_pass_scale=s2, oracle_scale=matched_scale(m, d)))
        print(images[-1], flush=True)
    rows = []
    for (k, h), v in labs.items():
        ms_ = [match_instances(g, l) for g, l in v]
        p = object_scores([None] * len(ms_), ms_)['summary']['pooled']
        rows.append(dict(setting=k, seed_h=h, f1=p['f1@0.5'], msa=p['msa'], n_pred=int(sum(x['n_pred'] for x in ms_)), n_true=int(sum(x['n_true'] for x in ms_))))
        print(f"{k:>14} seed_h {h:<5}: F1 {p['f1@0.5']:.3f}  {rows[-1]['n_pred']} objects for {rows[-1]['n_true']} cells")
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if 'model' in old: old = {'runs': {f"ours_{old['budget']}_{old['seed']}": dict(old, method='ours')}}   # the one-model layout of 2026-12-04
    runs = old.get('runs', {})
    runs[f'{a.method}_{a.budget}_{a.seed}'] = dict(model=str(run.relative_to(ROOT)), method=a.method, budget=a.budget, seed=a.seed, model_seed_h=pp.seed_h,
                                                   images=images, rows=rows, when=time.strftime('%Y-%m-%d %H:%M'))
    RESULTS.write_text(json.dumps(dict(runs=runs), indent=1))

if __name__ == '__main__': main()
