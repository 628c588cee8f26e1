"""Benchmark post-processing and metrics on the densest LIVECell sample image (MCF7, ~700 cells, 704x520).

Post-processing (`instances_from_probs`: watershed + per-cell table) is timed against the 0.25 s target and,
as a ratio, against its peer `skimage.segmentation.watershed` alone on the same maps (the one step nobody can
skip). Metrics (`match_instances` at 10 IoU thresholds) are timed for 100 such images against the peer
`skimage.metrics.contingency_table` (just the pixel contingency, no matching); the COCO AP of one dense
image (our RLE encoding + pycocotools' COCOeval) is timed on its own.

    python bench/bench_postprocess.py [--repeats 5] [--n-images 100]

Prints the figures and writes bench/out/bench_postprocess.json. Needs ../shared/data/livecell-sample.
"""
import argparse, json, sys, time
from pathlib import Path
import numpy as np

def _best(f, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return float(np.median(ts)), float(min(ts))

def densest_labels(root):
    "Rasterised GT of the sample image with the most cells"
    from pycocotools import mask as mu
    from cellseg_nb.metrics import as_coco_dict
    D = as_coco_dict(json.load(open(root/'livecell_coco_val.json')))
    counts = {}
    for a in D['annotations']: counts[a['image_id']] = counts.get(a['image_id'], 0) + 1
    im = next(i for i in D['images'] if i['id'] == max(counts, key=counts.get))
    L = np.zeros((im['height'], im['width']), np.int32)
    for k, a in enumerate(a for a in D['annotations'] if a['image_id'] == im['id']):
        L[mu.decode(mu.merge(mu.frPyObjects(a['segmentation'], im['height'], im['width']))).astype(bool)] = k + 1
    return im['file_name'], L

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--n-images', type=int, default=100)
    a = ap.parse_args(argv)
    from cellseg_nb.core import shared_data
    from cellseg_nb.postprocess import probs_from_labels, instances_from_probs, PostprocessParams
    from cellseg_nb.metrics import match_instances, object_scores
    from skimage.segmentation import watershed
    from skimage.metrics import contingency_table
    from scipy import ndimage as ndi
    root = shared_data('livecell-sample')
    if root is None: print('livecell-sample not found (../shared/data): nothing to benchmark'); return 0
    name, L = densest_labels(root)
    n_cells = len(np.unique(L)) - 1
    P = probs_from_labels(L, n_types=8, blur=1.0, noise=0.1, seed=0)
    pp = PostprocessParams()
    lab, cells = instances_from_probs(P, pp)
    f1 = object_scores([L], [lab])['summary']['pooled']['f1@0.5']
    t_pp, t_pp_min = _best(lambda: instances_from_probs(P, pp), a.repeats)
    sd = ndi.gaussian_filter(P['dist'], pp.smooth); mk = ndi.label(sd > pp.seed_threshold)[0]; mask = P['fg'] > pp.fg_threshold
    t_ws, _ = _best(lambda: watershed(-sd + P['boundary'], mk, mask=mask), a.repeats)
    # metrics: 100 predictions of that image (different noise) against its GT
    preds = [instances_from_probs(probs_from_labels(L, blur=1.0, noise=0.1, seed=s), pp)[0] for s in range(min(a.n_images, 5))]
    preds = [preds[i % len(preds)] for i in range(a.n_images)]
    t0 = time.perf_counter(); ms = [match_instances(L, p) for p in preds]; object_scores([L] * len(ms), ms)
    t_met = time.perf_counter() - t0
    t0 = time.perf_counter(); [contingency_table(L, p) for p in preds]; t_ct = time.perf_counter() - t0
    # COCO mask AP (pycocotools, maxDets 2000) of this one dense image: RLE encoding + COCOeval
    from cellseg_nb.metrics import labels_to_results, coco_ap
    G = {'images': [dict(id=1, file_name=name, height=L.shape[0], width=L.shape[1])],
         'annotations': [dict(r, id=i + 1, iscrowd=0, area=1.0, bbox=[0, 0, 1, 1]) for i, r in enumerate(labels_to_results(L, image_id=1))]}
    t0 = time.perf_counter(); R = labels_to_results(lab, cells, 1); t_rle = time.perf_counter() - t0
    t0 = time.perf_counter(); ap = coco_ap(G, R, group_of=lambda f: None)['AP']; t_ap = time.perf_counter() - t0
    res = dict(image=name, shape=list(L.shape), n_true=int(n_cells), n_pred=int(lab.max()), f1_at_0_5=f1,
               postprocess_s=t_pp, postprocess_min_s=t_pp_min, target_s=0.25, meets_target=t_pp <= 0.25,
               peer_watershed_only_s=t_ws, ratio_vs_watershed=t_pp / t_ws,
               metrics_n_images=a.n_images, metrics_s=t_met, metrics_per_image_s=t_met / a.n_images,
               peer_contingency_table_s=t_ct, ratio_vs_contingency_table=t_met / t_ct,
               rle_encode_s=t_rle, coco_ap_one_image_s=t_ap, coco_ap=ap)
    print(f"{name}: {n_cells} true cells, {lab.max()} found (F1@0.5 {f1:.3f} on blurred+noisy maps)")
    print(f"post-processing  {t_pp*1e3:7.1f} ms median ({t_pp_min*1e3:.1f} min)  target 250 ms: {'OK' if t_pp <= .25 else 'MISSED'}")
    print(f"  peer skimage watershed alone {t_ws*1e3:.1f} ms -> ours is {t_pp/t_ws:.2f}x the bare watershed")
    print(f"metrics, {a.n_images} images: {t_met:.2f} s ({t_met/a.n_images*1e3:.1f} ms/image, 10 IoU thresholds + matching)")
    print(f"  peer skimage contingency_table alone {t_ct:.2f} s -> ours is {t_met/t_ct:.2f}x")
    print(f"COCO AP of one such image: RLE encoding {t_rle*1e3:.0f} ms + COCOeval {t_ap:.2f} s (AP {ap:.3f}); "
          f"pycocotools dominates: ~{t_ap*a.n_images/60:.0f} min for {a.n_images} dense images")
    out = Path(__file__).resolve().parent/'out'; out.mkdir(exist_ok=True)
    (out/'bench_postprocess.json').write_text(json.dumps(res, indent=1))
    print(f"written {out/'bench_postprocess.json'}")
    return 0

if __name__ == '__main__': sys.exit(main())
