"""Benchmark `cellseg_nb.metrics.FastCOCOeval` against pycocotools' `COCOeval` (the peer, same run).

Data: the 5 annotated LIVECell images of `shared_data('livecell-sample')` (1,243 cells, up to 711 per image);
predictions = the true cells shifted by up to 2 px with random scores, 10% dropped (a realistic mix of
matches at every IoU threshold). Both evaluate with LIVECell's settings (useCats=0, maxDets 100/500/2000, its
size ranges); the `eval` arrays must be identical. Reports seconds of evaluate+accumulate and the speed-up.

    python bench/bench_ap.py [--repeats 3]        -> bench/out/bench_ap.json
"""
import argparse, json, time, io, contextlib, os
from pathlib import Path
import numpy as np

OUT = Path(__file__).resolve().parent/'out'

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0]); ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args(argv)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from pycocotools import mask as mu
    from cellseg_nb.core import shared_data
    from cellseg_nb.metrics import as_coco_dict, LIVECELL_AREA_RANGES, FastCOCOeval
    root = shared_data('livecell-sample')
    if root is None: print('skipped: shared_data("livecell-sample") not found'); return 0
    gt = as_coco_dict(json.load(open(root/'livecell_coco_val.json')))
    cg = COCO(); cg.dataset = gt; cg.createIndex()
    rng = np.random.default_rng(0); res = []
    for an in gt['annotations']:
        if rng.random() < 0.1: continue
        m = np.roll(mu.decode(cg.annToRLE(an)), rng.integers(-2, 3, 2), (0, 1))
        r = mu.encode(np.asfortranarray(m)); r['counts'] = r['counts'].decode()
        res.append(dict(image_id=an['image_id'], category_id=1, segmentation=r, score=float(rng.random())))
    def run(cls):
        with contextlib.redirect_stdout(io.StringIO()):
            cd = cg.loadRes([dict(r) for r in res])
            E = cls(cg, cd, iouType='segm'); E.params.useCats = 0; E.params.maxDets = [100, 500, 2000]
            E.params.areaRng = [list(v) for v in LIVECELL_AREA_RANGES.values()]; E.params.areaRngLbl = list(LIVECELL_AREA_RANGES)
            t = time.perf_counter(); E.evaluate(); E.accumulate(); return time.perf_counter() - t, E.eval
    rows = []
    for k in range(a.repeats):   # interleaved, so both see the same machine load
        ts, es = run(COCOeval); tf, ef = run(FastCOCOeval)
        same = all(np.array_equal(es[x], ef[x]) for x in ('precision', 'recall', 'scores'))
        rows.append(dict(pycocotools_s=round(ts, 3), fast_s=round(tf, 4), speedup=round(ts / tf, 1), identical=same))
        print(json.dumps(rows[-1]), flush=True)
    out = dict(images=len(gt['images']), cells=len(gt['annotations']), detections=len(res), runs=rows,
               median_speedup=float(np.median([r['speedup'] for r in rows])), identical=all(r['identical'] for r in rows),
               ap=float(ef['precision'][:, :, 0, 0, -1][ef['precision'][:, :, 0, 0, -1] > -1].mean()), load=os.getloadavg()[0])
    OUT.mkdir(exist_ok=True); (OUT/'bench_ap.json').write_text(json.dumps(out, indent=1))
    print(f"FastCOCOeval {out['median_speedup']}x pycocotools (median of {a.repeats}), identical: {out['identical']}, AP {out['ap']:.3f}")
    return 0

if __name__ == '__main__': raise SystemExit(main())
