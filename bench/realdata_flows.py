"""What a flow model's flows are worth when the cells are found, paired on the same models.

A model trained with `--flows` (`bench/realdata.py --ablation '{"flows": true}' --name flows`) learns a `flow` head (the
direction to each cell's centre) alongside the others, and `segment` raises its boundary map to the flows' edges
(`boundary_probs`). For each kept flow model (`bench/out/realdata/work/*_ours[flows]_*`) this re-segments the held-out
images in two comparisons:

- `predict`: as `cellseg predict` does (size matching, flips at test time, the model's tuned thresholds), once as the
  model is (`with`) and once with its `flow` head removed (`without`), which separates what learning the flows did to
  the other heads from what their edges add at test time. (Thresholds were tuned with the edges.)
- `sinks`: on one pass's maps at the scale `segment` picks (no flips), the product's post-processing with the boundary
  head alone (seeds at the peaks of the distance map, watershed: `peaks`) against Cellpose's way of using flows
  (`sinks`): every foreground pixel follows the flows for `NITER` steps, the end points are counted per pixel, each
  local maximum of that count (5×5, at least `MIN_COUNT` end points) is a cell, grown by 5 dilations over the pixels
  where at least 3 end points gathered, each pixel joins the cell its path ended in, and cells below the model's
  `min_size` are dropped (as Cellpose's `get_masks`; no flow-error check). Both are scored by `cell_table`.

`--report` writes `bench/results/realdata_flows.json`: per model F1@0.5 / mSA / AP of both comparisons, and the mean ± sd
of the differences.

    python bench/realdata_flows.py --match _15min_   # about 1-2 min per model on 2 cores
    python bench/realdata_flows.py --report
"""
from __future__ import annotations
import argparse, glob, json, sys, time
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
OUT = ROOT/'bench/out/realdata_flows'
RESULTS = ROOT/'bench/results/realdata_flows.json'
METHOD = 'ours[flows]'
NITER, MIN_COUNT = 200, 10   # Cellpose's steps of the flows, and end points that make a cell

from realdata import items_of, folds, score, label_scores, ms, segment_scale, OUT as RD

def without_flows(model):
    "`model` with its `flow` head removed: `segment` then uses the boundary head alone"
    del model.heads['flow_head']; model.config['heads'] = [h for h in model.config['heads'] if h != 'flow']
    return model

def follow_flows(flow:np.ndarray, # (2, H, W) predicted (dy, dx)
                 mask:np.ndarray, # (H, W) foreground
                 niter:int=NITER):
    "Pixel coordinates of `mask` and where each ends after `niter` steps along the flows (bilinear; Cellpose's `steps2D`)"
    import torch, torch.nn.functional as F
    H, W = mask.shape; yy, xx = np.nonzero(mask)
    p = torch.tensor(np.stack([yy, xx], 1), dtype=torch.float32); ft = torch.from_numpy(flow)[None].float()
    for _ in range(niter):
        g = torch.stack([2 * p[:, 1] / max(W - 1, 1) - 1, 2 * p[:, 0] / max(H - 1, 1) - 1], 1)[None, None]
        p = p + F.grid_sample(ft, g, align_corners=True)[0, :, 0].T
        p[:, 0].clamp_(0, H - 1); p[:, 1].clamp_(0, W - 1)
    return yy, xx, p.round().long().numpy()

def sink_labels(flow, mask, min_size:int, min_count:int=MIN_COUNT) -> np.ndarray:
    "Cells as the sinks of the flows (see the module's docstring)"
    from scipy import ndimage as ndi
    from skimage.segmentation import relabel_sequential
    from cellseg_nb.postprocess import remove_small
    yy, xx, pe = follow_flows(flow, mask)
    hist = np.zeros(mask.shape, np.int32); np.add.at(hist, (pe[:, 0], pe[:, 1]), 1)
    lab = ndi.label((hist == ndi.maximum_filter(hist, 5)) & (hist >= min_count))[0]
    for _ in range(5):   # grow each sink over the pixels where end points gathered
        lab = np.where((lab == 0) & (hist > 2), ndi.grey_dilation(lab, size=3), lab)
    out = np.zeros(mask.shape, np.int32); out[yy, xx] = lab[pe[:, 0], pe[:, 1]]
    return relabel_sequential(remove_small(out, min_size))[0].astype(np.int32)

def one_pass(m, img):
    "The maps of one pass at the scale `segment` picks, without flips: probabilities and flows at the image's size"
    import torch
    from cellseg_nb.infer import model_scale, normalisation_of
    from cellseg_nb.postprocess import PostprocessParams
    from cellseg_nb.core import normalize_image
    pp = PostprocessParams.from_dict(m.config.get('postprocess'))
    s = segment_scale(m, img, pp)
    x = torch.from_numpy(np.ascontiguousarray(normalize_image(img, **normalisation_of(m)), np.float32))[None, None]
    with model_scale(m, s), torch.no_grad(): out = m(x)
    return {h: torch.sigmoid(out[h][0, 0]).numpy() for h in ('fg', 'boundary', 'dist')}, out['flow'][0].numpy(), pp

def one(run:Path) -> dict:
    "Both comparisons on one kept flow model's held-out images"
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.predict import predict
    from cellseg_nb.postprocess import instances_from_probs, fill_small_holes, cell_table
    p = run.name.split('_')[0]; fold = run.name[len(p) + 1:].rsplit(f'_{METHOD}_', 1)[0]
    items = items_of(p, folds(p)[fold][2]); r = dict(run=run.name, protocol=p, fold=fold)
    for way in ('with', 'without'):
        m = load_model(run/'run/best')
        if way == 'without': m = without_flows(m)
        r[way] = score(items, [(lab, label_scores(lab, c)) for lab, c in (predict(m, img, progress=False) for _, img, _ in items)])
    m = load_model(run/'run/best').eval(); preds = {'peaks': [], 'sinks': []}
    for _, img, _ in items:
        probs, flow, pp = one_pass(m, img)
        lab, cells = instances_from_probs(probs, pp); preds['peaks'].append((lab, label_scores(lab, cells)))
        mask = probs['fg'] > pp.fg_threshold
        if pp.fill_holes: mask = fill_small_holes(mask, pp.max_hole_size)
        sl = sink_labels(flow, mask, pp.min_size)
        preds['sinks'].append((sl, label_scores(sl, cell_table(sl, probs, **pp.table_args()))))   # scored as the product scores its cells
    r.update({k: score(items, v) for k, v in preds.items()})
    return r

PAIRS = (('with', 'without'), ('sinks', 'peaks'))

def report() -> dict:
    rows = [json.loads(l) for l in open(OUT/'runs.jsonl')]
    diff = {f'{a} - {b}': {k: ms([r[a][k] - r[b][k] for r in rows]) for k in ('f1', 'msa', 'ap')} for a, b in PAIRS}
    out = dict(when=time.strftime('%Y-%m-%d'), method=METHOD, niter=NITER, min_count=MIN_COUNT, runs=rows, differences=diff)
    RESULTS.write_text(json.dumps(out, indent=1))
    for r in rows:
        print(f"{r['run']:40s}", '  '.join(f"{w} {r[w]['f1']:.3f}/{r[w]['ap']:.3f} ({r[w]['n_pred']})" for a, b in PAIRS for w in (a, b)),
              f"cells {r['with']['n_true']}")
    for k, v in diff.items(): print(k, {q: f"{t['mean']:+.3f} ± {t['sd']:.3f} (n {t['n']})" for q, t in v.items()})
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0]); ap.add_argument('--report', action='store_true')
    ap.add_argument('--match', nargs='*', default=[], help='only the models whose folder name holds all of these, e.g. _15min_')
    a = ap.parse_args(argv)
    if a.report: return report()
    import torch; torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True); runs = OUT/'runs.jsonl'
    done = {json.loads(l)['run'] for l in open(runs)} if runs.exists() else set()
    for run in sorted((RD/'work').glob(f'*_{glob.escape(METHOD)}_*')):
        if run.name in done or not (run/'run/best').exists() or not all(m in run.name for m in a.match): continue
        t0 = time.perf_counter(); r = one(run)
        with open(runs, 'a') as f: f.write(json.dumps(r) + '\n')
        print(run.name, {w: round(r[w]['f1'], 3) for a_b in PAIRS for w in a_b}, f'{time.perf_counter() - t0:.0f} s', flush=True)
    return report()

if __name__ == '__main__': main()
