"""Benchmark the head targets (`make_targets`) and a full `CellDataset` sample.

`make_targets` (fg, boundary, per-instance normalised distance, type) is timed on a dense 512x512 label image with
700 mostly touching cells (target < 30 ms) and on the densest real LIVECell sample image (MCF7, 711 cells,
520x704; skipped if ../shared/data is absent), against two peers measured in the same run:
  - `per_cell_loop`: the obvious implementation, one `distance_transform_edt` per cell's bounding box plus
    `skimage.segmentation.find_boundaries(mode='inner')`;
  - `same_with_scipy_edt`: our single-transform algorithm with scipy's EDT instead of OpenCV's.
A `CellDataset` sample (read a 520x704 TIFF, normalise, 'default' augmentation, 512 crop, targets) is timed against
its peer "read + normalise only" (the part no pipeline can skip).

    python bench/bench_targets.py [--repeats 7]

Prints the figures and writes bench/out/bench_targets.json.
"""
import argparse, json, sys, time, tempfile, warnings
from pathlib import Path
import numpy as np
from scipy import ndimage as ndi

def _time(f, repeats):
    f(); ts = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return float(np.median(ts)), float(min(ts))

def per_cell_loop(labels, cell_types):
    "Peer: the straightforward per-cell implementation of the same targets"
    from skimage.segmentation import find_boundaries
    fg = labels > 0
    bnd = find_boundaries(labels, mode='inner')
    dist = np.zeros(labels.shape, np.float32)
    for i, sl in enumerate(ndi.find_objects(labels), 1):
        if sl is None: continue
        m = np.pad(labels[sl] == i, 1)
        d = ndi.distance_transform_edt(m)[1:-1, 1:-1]
        dist[sl][labels[sl] == i] = (d / d.max())[labels[sl] == i]
    k = np.asarray(cell_types)[labels]
    typ = np.where(fg, k + 1, 0).astype(np.int64)
    return dict(fg=fg[None].astype(np.float32), boundary=bnd[None].astype(np.float32), dist=dist[None], type=typ)

def bench_labels(name, lab, repeats, out):
    import cellseg_nb.data.targets as T
    from cellseg_nb.data.targets import make_targets
    ct = np.zeros(int(lab.max()) + 1, np.int64)
    ours = _time(lambda: make_targets(lab, ct), repeats)
    loop = _time(lambda: per_cell_loop(lab, ct), max(2, repeats // 2))
    cv_edt = T._edt
    T._edt = lambda m: ndi.distance_transform_edt(m).astype(np.float32)
    try: sp = _time(lambda: make_targets(lab, ct), repeats)
    finally: T._edt = cv_edt
    n = len(np.unique(lab)) - 1
    r = dict(shape=list(lab.shape), n_cells=n, make_targets_ms=1000 * ours[0], make_targets_best_ms=1000 * ours[1],
             per_cell_loop_ms=1000 * loop[0], same_with_scipy_edt_ms=1000 * sp[0],
             speedup_vs_per_cell_loop=loop[0] / ours[0], speedup_vs_scipy_edt=sp[0] / ours[0])
    out[name] = r
    print(f"{name}: {lab.shape[0]}x{lab.shape[1]}, {n} cells: make_targets {r['make_targets_ms']:.1f} ms median "
          f"({r['make_targets_best_ms']:.1f} best; target < 30) | per_cell_loop {r['per_cell_loop_ms']:.1f} ms "
          f"-> {r['speedup_vs_per_cell_loop']:.1f}x faster | scipy EDT variant {r['same_with_scipy_edt_ms']:.1f} ms "
          f"-> {r['speedup_vs_scipy_edt']:.1f}x")

def bench_dataset(repeats, out):
    from cellseg_nb.data.synthset import make_synthetic_livecell
    from cellseg_nb.data.sources import livecell_source
    from cellseg_nb.data.datasets import CellDataset
    from cellseg_nb.augment import get_transforms
    from cellseg_nb.core import read_image, normalize_image
    with tempfile.TemporaryDirectory() as d:
        syn = make_synthetic_livecell(d, n_images=6, seed=0, progress=False)
        src = livecell_source(d, 'train', cache_dir=Path(d)/'cache', progress=False)
        ds = CellDataset(src, get_transforms('default', crop_size=512, seed=0), crop_size=512)
        n = len(ds); it = iter(range(10**9))
        full = _time(lambda: ds[next(it) % n], repeats * 2)
        peer = _time(lambda: normalize_image(read_image(src.coco.image_path(src.idx[next(it) % n]))), repeats * 2)
    out['dataset_sample'] = dict(sample_ms=1000 * full[0], read_normalize_ms=1000 * peer[0], ratio_to_read_normalize=full[0] / peer[0],
                                 samples_per_s_one_core=1 / full[0])
    print(f"CellDataset sample (520x704 -> 512 crop, 'default' aug, targets): {1000 * full[0]:.1f} ms = "
          f"{1 / full[0]:.1f} samples/s on one core | peer read+normalise {1000 * peer[0]:.1f} ms -> ratio {full[0] / peer[0]:.1f}x")

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--repeats', type=int, default=7)
    a = ap.parse_args(argv)
    from cellseg_nb.data.targets import voronoi_labels
    from cellseg_nb.core import shared_data
    out = {}
    bench_labels('voronoi_512', voronoi_labels((512, 512), 700, seed=0), a.repeats, out)
    lc = shared_data('livecell-sample')
    if lc is not None:
        from cellseg_nb.data.sources import livecell_source
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as d:
            warnings.simplefilter('ignore')
            src = livecell_source(lc, 'val', cache_dir=d, progress=False)
            i = max(range(len(src)), key=lambda i: src.coco.records[src.idx[i]]['n_cells'])
            bench_labels('livecell_mcf7', src.labels(i), a.repeats, out)
    else: print("../shared/data/livecell-sample absent: real-image figure skipped")
    bench_dataset(a.repeats, out)
    Path('bench/out').mkdir(parents=True, exist_ok=True)
    Path('bench/out/bench_targets.json').write_text(json.dumps(out, indent=1))
    return 0

if __name__ == '__main__': sys.exit(main())
