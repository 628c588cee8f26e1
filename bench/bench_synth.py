"""Synthetic LIVECell generator speed at 704×520, sparse and confluent, single process.

Measures, in one run:
- `synth_image` (image + instance labels) images/s,
- the full per-image write path of `make_synthetic_livecell` (image + labels + COCO polygons + zlib TIFF),
- the peer: `skimage.draw.random_shapes` making a labelled synthetic image of the same size with the
  same number of shapes (scikit-image's stock synthetic-shapes generator; no phase-contrast rendering),
and reports our speed as a ratio against that peer; plus polygon tracing of one confluent image against
`cellseg_nb.data.labelcache.labels_to_coco` (the peer a COCO writer would otherwise call). Speeds are per CPU-second of this (single-threaded)
process, i.e. on one dedicated core, so that other jobs on a shared machine do not skew them. Results go to stdout and bench/out/bench_synth.json.

    python bench/bench_synth.py [--n 10] [--seed 0]
"""
import argparse, io, json, os, time, platform
from pathlib import Path
import numpy as np, tifffile
from skimage.draw import random_shapes
from cellseg_nb.data.synth import synth_image, labels_to_polygons, SYNTH_TYPES

def rate(fn, n):
    "Calls per CPU-second of `fn(i)` over `i = 0..n-1` (after one warm-up call): the speed on one dedicated core"
    fn(-1); t0 = time.process_time()
    for i in range(n): fn(i)
    return n/(time.process_time() - t0)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=10, help='images per measurement')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    H, W = 520, 704
    rows = []
    for name, dens in (('sparse', 0.1), ('confluent', 0.85)):
        for t in SYNTH_TYPES + ('mixed',):
            ncells = [synth_image(a.seed + i, t, (H, W), dens)[1].max() for i in range(2)]
            def gen(i): synth_image(a.seed + 1000 + i, t, (H, W), dens)
            def full(i):
                img, lab, names = synth_image(a.seed + 2000 + i, t, (H, W), dens)
                labels_to_polygons(lab); tifffile.imwrite(io.BytesIO(), img, compression='zlib')
            k = int(np.mean(ncells))
            def peer(i): random_shapes((H, W), max_shapes=k, min_shapes=k, min_size=15, max_size=40,
                                       num_channels=1, allow_overlap=True, rng=a.seed + 3000 + i)
            r_gen, r_full, r_peer = rate(gen, a.n), rate(full, a.n), rate(peer, max(a.n//2, 2))
            rows.append(dict(density=name, coverage=dens, type=t, cells=k, synth_image_per_s=round(r_gen, 2),
                             full_write_per_s=round(r_full, 2), peer_random_shapes_per_s=round(r_peer, 2),
                             ratio_synth_vs_peer=round(r_gen/r_peer, 2), ratio_full_vs_peer=round(r_full/r_peer, 2)))
            r = rows[-1]
            print(f"{name:9s} {t:8s} {k:5d} cells: synth_image {r_gen:6.1f} img/s, full write {r_full:6.1f} img/s; "
                  f"peer skimage.draw.random_shapes {r_peer:6.2f} img/s -> {r_gen/r_peer:5.1f}x / {r_full/r_peer:5.1f}x")
    img, lab, _ = synth_image(a.seed, 'spindle', (H, W), 0.85)
    r_ours = rate(lambda i: labels_to_polygons(lab), a.n)
    try:
        from cellseg_nb.data.labelcache import labels_to_coco
        r_coco = rate(lambda i: labels_to_coco(lab, 1), a.n)
    except ImportError: r_coco = None
    poly = dict(cells=int(lab.max()), labels_to_polygons_per_s=round(r_ours, 2),
                peer_coco_labels_to_coco_per_s=None if r_coco is None else round(r_coco, 2),
                ratio=None if r_coco is None else round(r_ours/r_coco, 2))
    print(f"polygons of a confluent image ({lab.max()} cells): labels_to_polygons {r_ours:.1f}/s"
          + ('' if r_coco is None else f"; peer cellseg_nb.data.labelcache.labels_to_coco {r_coco:.1f}/s -> {r_ours/r_coco:.1f}x"))
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else None
    out = Path(__file__).parent/'out'; out.mkdir(exist_ok=True)
    res = dict(size=[W, H], n=a.n, load_avg_1min=load, cpu_count=os.cpu_count(), python=platform.python_version(), rows=rows, polygons=poly)
    (out/'bench_synth.json').write_text(json.dumps(res, indent=1))
    print(f"load average {load}; wrote {out/'bench_synth.json'}")

if __name__ == '__main__': main()
