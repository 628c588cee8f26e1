"""Where the two-pass size matching loses: its first pass against its second, and hedges between the two, paired.

`segment` (no `--diameter`) segments an image at the model's scale, measures its cells' median diameter and, where
that differs from the training size, segments it again resized so they match. Pooled, that second pass wins
(`bench/realdata_postprocess.py`, `after+flips` against `after+flips+matched`), but on some folds and seeds it loses
by 0.1-0.2 F1 (BT474_C3 on each of its five 15-minute seeds measured). This script re-segments the held-out images of the models
`bench/realdata.py` kept (`bench/out/realdata/work/<protocol>_<fold>_<method>_<budget>_<seed>/run/best`), each
model every way on the same maps:
- `first`: the first pass only (the model's own scale); `product`: `segment`'s default (the second pass where it runs);
- `half`: one pass half way (in log) between the two scales, a shrunk size estimate;
- `avgmaps`: the probability maps of both passes averaged, then post-processed once;
- `fuse`: the cells of both passes pooled, greedily by cell score; a cell is kept while at least half of it is free;
- `adabn`: `product`, with each pass's BatchNorm statistics re-estimated on the image itself at that pass's scale
  (test-time adaptation, AdaBN; four flips, as the prediction).
Writes `bench/results/realdata_twopass.json`: per model F1@0.5 / mSA / COCO mask AP of every variant, and per
variant the mean ± sd over models of its difference to `product` (a leave-one-image-out Huh7_A10 model whose
leave-one-line-out Huh7 twin, the same split, was measured too counts once).

    python bench/realdata_twopass.py                       # every kept LIVECell model, about 4 CPU-minutes on 2 cores
    python bench/realdata_twopass.py lc5-loio_BT474_C3_ours_15min_5   # named kept models
    python bench/realdata_twopass.py --report                # the summary again from the models measured
"""
from __future__ import annotations
import argparse, copy, json, sys, time
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
RESULTS = ROOT/'bench/results/realdata_twopass.json'
VARIANTS = ('first', 'product', 'half', 'avgmaps', 'fuse', 'adabn')
FUSE_FREE = 0.5   # `fuse`: the share of a cell that must still be free for it to be kept
SAME_SPLIT = {'lc5-loio_Huh7_A10_': 'lc5-lolo_Huh7_'}   # Huh7 has one image: leaving it out is leaving its line out, the same split

from realdata import ms   # the benches' one pooling

def fuse(a, sa, b, sb, free:float=FUSE_FREE):
    "The cells of label images `a` and `b` (scores `sa`, `sb`) pooled greedily by score; a cell keeps its free pixels if they are at least `free` of it"
    from scipy import ndimage as ndi
    cand = sorted([(s, 0, i + 1) for i, s in enumerate(sa)] + [(s, 1, i + 1) for i, s in enumerate(sb)], key=lambda t: -t[0])
    objs = (ndi.find_objects(a), ndi.find_objects(b))
    out, scores = np.zeros(a.shape, np.int32), []
    for s, w, l in cand:
        sl = objs[w][l - 1] if l - 1 < len(objs[w]) else None
        if sl is None: continue
        m = (a, b)[w][sl] == l; n = int(m.sum())
        f = m & (out[sl] == 0)
        if n and f.sum() >= free * n:
            out[sl][f] = len(scores) + 1; scores.append(s)
    return out, scores

def batchnorms(m) -> list:
    "The BatchNorm layers of `m`"
    import torch
    return [x for x in m.modules() if isinstance(x, torch.nn.modules.batchnorm._BatchNorm)]

def adapted(model, image, scale):
    "A copy of `model` whose BatchNorm statistics are those of `image` (normalised as `infer_maps` does) at `scale`, over four flips"
    import torch
    from cellseg_nb.core import normalize_image
    from cellseg_nb.infer import normalisation_of, model_scale, TTA_MODES, _fwd
    m = copy.deepcopy(model).eval()
    for b in batchnorms(m): b.reset_running_stats(); b.momentum = None; b.train()   # a cumulative mean over the passes below
    x = torch.from_numpy(normalize_image(image, **normalisation_of(m)))[None, None]
    xt = x.expand(-1, int((m.config or {}).get('in_channels', 1)), -1, -1).contiguous()
    with torch.no_grad(), model_scale(m, scale):
        for k, f in TTA_MODES['flips']: m(_fwd(xt, k, f))
    return m.eval()

def kept_models() -> list:
    "Every kept `ours` model of a LIVECell protocol (Usiigaci's images are 4x larger: name them to include them)"
    import realdata as rd
    return sorted(p.name for p in (rd.OUT/'work').glob('lc5-lo*_ours*') if (p/'run/best/config.json').exists())

def kept_model(name:str):
    "`(protocol, fold, model)` of a kept model folder of bench/out/realdata/work, e.g. lc5-lolo_BT474_ours_15min_0"
    import realdata as rd
    from cellseg_nb.models.unet import load_model
    protocol, rest = name.split('_', 1)
    return protocol, next(f for f in rd.folds(protocol) if rest.startswith(f + '_')), load_model(rd.OUT/'work'/name/'run/best')

def run_model(name:str) -> dict:
    import realdata as rd
    from cellseg_nb.infer import infer_maps, model_scale, labelled_cells, model_params, second_pass_scale
    from cellseg_nb.data.targets import median_diameter
    protocol, fold, model = kept_model(name); s0, pp = model.scale, model_params(model)
    items = rd.items_of(protocol, rd.folds(protocol)[fold][2]); preds, images = {v: [] for v in VARIANTS}, []
    for im, img, gt in items:
        def maps(scale, m=model):
            with model_scale(m, scale): return infer_maps(m, img, tta='flips', progress=False).probs()
        def seg(mp):
            lab, cells = labelled_cells(mp, pp); return lab, rd.label_scores(lab, cells)
        ma = maps(s0); a = seg(ma); s2 = second_pass_scale(model, a[0])
        if s2 is None: mb, b = ma, a
        else: mb = maps(s2); b = seg(mb)
        got = dict(first=a, product=b, half=a if s2 is None else seg(maps(float(np.sqrt(s0 * s2)))),
                   avgmaps=seg({k: (ma[k] + mb[k]) / 2 for k in ma}), fuse=fuse(*a, *b))
        aa = seg(maps(s0, adapted(model, img, s0))); s2a = second_pass_scale(model, aa[0])
        got['adabn'] = aa if s2a is None else seg(maps(s2a, adapted(model, img, s2a)))
        for k, v in got.items(): preds[k].append(v)
        images.append(dict(image=im, true_diameter=round(median_diameter([gt]), 1), first_pass_diameter=round(median_diameter([a[0]]), 1),
                           model_scale=s0, second_pass_scale=s2, objects={k: int(v[0].max()) for k, v in got.items()}, true_cells=int(gt.max())))
    out = {k: {m: round(float(x), 4) for m, x in rd.score(items, v).items() if m in ('f1', 'msa', 'ap')} for k, v in preds.items()}
    return dict(scores=out, images=images)

def paired_summary(runs:dict, variants, score_of, base) -> dict:
    "Per variant: mean ± sd over models of its F1 and AP minus `base`'s (`score_of(run, variant)` -> scores), wins and losses (±0.005)"
    twin = lambda k: next((b + k[len(a):] for a, b in SAME_SPLIT.items() if k.startswith(a)), None)
    runs = {k: v for k, v in runs.items() if twin(k) not in runs}   # a split measured twice counts once
    out = {}
    for v in variants:
        d = {m: [score_of(r, v)[m] - score_of(r, base)[m] for r in runs.values()] for m in ('f1', 'ap')}
        out[v] = dict(f1_minus_product=ms(d['f1']), ap_minus_product=ms(d['ap']), f1_wins=int(sum(x > 0.005 for x in d['f1'])),
                      f1_losses=int(sum(x < -0.005 for x in d['f1'])), models=len(runs))
    return out

def summary(runs:dict) -> dict:
    "Per variant: the mean ± sd over models of its F1 and AP minus `product`'s, and on how many models it beats `product`"
    return paired_summary(runs, VARIANTS, lambda r, v: r['scores'][v], 'product')

def show_paired(summ:dict) -> None:
    "Print a `paired_summary`: each variant against the product"
    for v, s in summ.items():
        print(f"{v:>8}: F1 - product {s['f1_minus_product']['mean']:+.3f} ± {s['f1_minus_product']['sd']:.3f}, "
              f"AP {s['ap_minus_product']['mean']:+.3f}; beats product on {s['f1_wins']} of {s['models']}, loses on {s['f1_losses']}")

def screen_main(argv, doc:str, results:Path, run_model, summary, line, show=show_paired) -> None:
    "The command line of a screen of the kept models: measure the named ones (default: every kept one), saving after each; `--report` pools again; `show` prints the summary"
    ap = argparse.ArgumentParser(description=doc.split('\n')[0])
    ap.add_argument('models', nargs='*', help="kept model folders of bench/out/realdata/work (default: every kept LIVECell `ours` model)")
    ap.add_argument('--report', action='store_true', help="only pool the models already measured into the summary")
    a = ap.parse_args(argv)
    if a.report and a.models: ap.error("--report pools the models already measured: give no model names with it")
    names = [] if a.report else a.models or kept_models()
    if not names and not a.report: sys.exit("no kept models: run bench/realdata.py first (it keeps each run's model in bench/out/realdata/work)")
    old = json.loads(results.read_text()) if results.exists() else {}
    runs = old.get('runs', {})
    if a.report and not runs: sys.exit(f"{results} holds no measured model: run {Path(sys.argv[0]).name} first")
    save = lambda: results.write_text(json.dumps({**old, 'protocol': doc, 'runs': runs, 'summary': summary(runs), 'when': time.strftime('%Y-%m-%d %H:%M')}, indent=1))
    for n in names:
        t = time.perf_counter(); runs[n] = run_model(n)
        print(n, line(runs[n]), f'({time.perf_counter() - t:.0f} s)', flush=True)
        save()   # after each model: an interrupted screen keeps what it measured
    if a.report: save()
    show(summary(runs))

def main(argv=None):
    screen_main(argv, __doc__, RESULTS, run_model, summary, lambda r: ' '.join(f"{k} {v['f1']:.3f}/{v['ap']:.3f}" for k, v in r['scores'].items()))

if __name__ == '__main__': main()
