"""Merging the pieces of a cut cell: do neighbours the model drew no edge between belong together?

The product seeds cells at the peaks of the distance map (h-maxima, `seed_h`), and one fixed peak height is wrong for
some images: on BT474_B3 it cuts cells into pieces (226-275 objects for 177 cells at 15 minutes), on BT474_C3 a lower
height would split more of its merged clusters (`bench/realdata_seedh.py`). The boundary head says where the model
saw an edge between two cells; the pieces of a cut cell meet along a line it never drew. This script re-segments the
held-out images of the kept models of `bench/realdata.py` (`bench/out/realdata/work/*_ours_*`) as
`cellseg_nb.infer.segment` does (two-pass size matching, flips at test time, the model's tuned thresholds), then
merges neighbours whose contact has a mean boundary probability below `tau` (weakest contact first, contacts of at
least `MIN_CONTACT` pixel pairs), at the peak heights `HS` and levels `TAUS` (`tau=0`: no merging, the product).
Each (model, image) is appended to `bench/out/realdata_merge/runs.jsonl` (maps cached in `maps/`), so a stopped run
resumes; `--report` writes `bench/results/realdata_merge.json`: F1@0.5 and AP per model group and variant.

    python bench/realdata_merge.py           # about 30 s per held-out image and model on 2 cores
    python bench/realdata_merge.py --report
"""
from __future__ import annotations
import argparse, dataclasses, heapq, json, sys, time
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
OUT = ROOT/'bench/out/realdata_merge'
RESULTS = ROOT/'bench/results/realdata_merge.json'
HS = (0.02, 0.05, 0.1)
TAUS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
MIN_CONTACT = 3

from realdata import ms, score, segment_scale
from cellseg_nb.postprocess import contacts

def merge_unseparated(lab:np.ndarray, bd:np.ndarray, tau:float, min_contact:int=MIN_CONTACT) -> np.ndarray:
    "Merge touching cells whose contact's mean boundary probability is below `tau`, weakest first"
    if tau <= 0: return lab
    pa, pb, s, c = contacts(lab, bd)
    nb = {}   # cell -> {neighbour: [sum, count]}
    for x, y, sv, cv in zip(pa.tolist(), pb.tolist(), s.tolist(), c.tolist()):
        nb.setdefault(x, {})[y] = [sv, cv]; nb.setdefault(y, {})[x] = [sv, cv]
    heap = [(sv / cv, x, y) for x, y, sv, cv in zip(pa.tolist(), pb.tolist(), s.tolist(), c.tolist()) if cv >= min_contact and sv / cv < tau]
    heapq.heapify(heap); parent = {}
    while heap:
        m, x, y = heapq.heappop(heap)
        if x in parent or y in parent or y not in nb.get(x, {}): continue
        sv, cv = nb[x][y]
        if cv < min_contact or abs(sv / cv - m) > 1e-12: continue   # stale: the contact grew since
        parent[y] = x; del nb[x][y]
        for z, (sz, cz) in nb.pop(y).items():
            if z == x: continue
            del nb[z][y]
            e = nb[x].setdefault(z, [0.0, 0.0]); e[0] += sz; e[1] += cz; nb[z][x] = e
            if e[1] >= min_contact and e[0] / e[1] < tau: heapq.heappush(heap, (e[0] / e[1], min(x, z), max(x, z)))
    if not parent: return lab
    root = np.arange(int(lab.max()) + 1)
    for y in sorted(parent):
        r = parent[y]
        while r in parent: r = parent[r]
        root[y] = r
    from skimage.segmentation import relabel_sequential
    return relabel_sequential(root[lab])[0].astype(lab.dtype)

def maps_of(run:Path, name:str, img):
    "The maps `segment` would post-process (its scale, flips) and the model's thresholds; cached"
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.infer import infer_maps, model_scale
    from cellseg_nb.postprocess import PostprocessParams
    f = OUT/'maps'/f'{run.name}__{name}.npz'
    m = load_model(run/'run/best'); pp = PostprocessParams.from_dict(m.config.get('postprocess'))
    if f.exists(): z = np.load(f); return {k: z[k].astype(np.float32) for k in ('fg', 'boundary', 'dist')}, pp
    s = segment_scale(m, img, pp)
    with model_scale(m, s): pr = infer_maps(m, img).probs(with_type=False)
    pr = {k: np.asarray(pr[k], np.float16) for k in ('fg', 'boundary', 'dist')}
    f.parent.mkdir(parents=True, exist_ok=True); np.savez_compressed(f, **pr)
    return {k: v.astype(np.float32) for k, v in pr.items()}, pp

def variants(pr, pp):
    "{(h, tau): (labels, scores)} of one image's maps"
    from cellseg_nb.postprocess import instances_from_probs, cell_table
    out = {}
    for h in HS:
        lab0 = instances_from_probs(pr, dataclasses.replace(pp, seed_h=h))[0]
        for t in TAUS:
            lab = merge_unseparated(lab0, pr['boundary'], t)
            tab = cell_table(lab, pr, **pp.table_args())
            sc = np.zeros(int(lab.max()) + 1); sc[tab['label'].to_numpy()] = tab['score'].to_numpy()
            out[(h, t)] = (lab, sc[1:])
    return out

def group(run:str) -> str:
    p, *_, budget, seed = run.split('_')
    return f'{p} {budget}'

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0]); ap.add_argument('--report', action='store_true')
    ap.add_argument('--runs', nargs='*', help='names of kept runs (default: every `*_ours_*` run)')
    a = ap.parse_args(argv)
    runs_f = OUT/'runs.jsonl'
    if not a.report:
        from realdata import items_of, folds, OUT as RD
        import torch; torch.set_num_threads(2)
        OUT.mkdir(parents=True, exist_ok=True)
        done = {r['run'] for r in map(json.loads, open(runs_f))} if runs_f.exists() else set()
        for run in sorted((RD/'work').glob('*_ours_*')):
            if a.runs and run.name not in a.runs: continue
            p = run.name.split('_')[0]; fold = run.name[len(p) + 1:].rsplit('_ours_', 1)[0]
            if run.name in done or not (run/'run/best').exists() or fold not in folds(p): continue
            t0 = time.perf_counter(); items = items_of(p, folds(p)[fold][2]); per = {}
            for n, img, gt in items:
                pr, pp = maps_of(run, n, img)
                for k, v in variants(pr, pp).items(): per.setdefault(k, []).append(v)
            r = dict(run=run.name, v={f'h={h},tau={t}': {k: round(float(x), 4) for k, x in score(items, preds).items()}
                                      for (h, t), preds in per.items()})
            with open(runs_f, 'a') as f: f.write(json.dumps(r) + '\n')
            print(run.name, {k: round(v['f1'], 3) for k, v in r['v'].items()}, f'{time.perf_counter() - t0:.0f} s', flush=True)
    rows = [json.loads(l) for l in open(runs_f)]
    out = dict(heights=list(HS), taus=list(TAUS), min_contact=MIN_CONTACT, when=time.strftime('%Y-%m-%d'), by_group={},
               runs={r['run']: {k: dict(f1=v['f1'], ap=v['ap'], n_pred=v['n_pred'], n_true=v['n_true']) for k, v in r['v'].items()} for r in rows})
    for g in dict.fromkeys(group(r['run']) for r in rows):
        rs = [r for r in rows if group(r['run']) == g]
        out['by_group'][g] = {k: dict(f1=ms([r['v'][k]['f1'] for r in rs]), ap=ms([r['v'][k]['ap'] for r in rs])) for k in rs[0]['v']}
    RESULTS.write_text(json.dumps(out, indent=1))
    for g, t in out['by_group'].items():
        print(g, f"({sum(group(r['run']) == g for r in rows)} models)")
        for k, v in t.items(): print(f"  {k:16s} F1 {v['f1']['mean']:.3f}±{v['f1']['sd']:.3f}  AP {v['ap']['mean']:.3f}±{v['ap']['sd']:.3f}")
    return out

if __name__ == '__main__': main()
