"""COCO -> instance label images: `cellseg_nb.data.labelcache.CocoLabels` against a plain pycocotools loop.

Generates a synthetic LIVECell-scale annotation file (LIVECell's dict-keyed `annotations`, 704x520
images, ~340 star-shaped cells per image with 20-40 float vertices; >= 300 MB, >= 100k cells) plus
the list-form copy pycocotools needs, then measures in one run:
  1. our conversion (json -> cached label images), in a subprocess: wall time and peak RSS
     (`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`, read before any other child runs) against the
     json's size (target: peak RSS < 2x the file size); also a second run (cache only) and one epoch
     of reading every label image;
  2. pycocotools: `COCO(list-form json)` on the whole file, then per image `annToMask` for each
     annotation painted into a label image. The loop runs on a subset of images (--pyco-images) and
     is extrapolated per image to the whole file (stated in the table); target: ours >= 10x faster.
Results are printed and written to bench/out/bench_coco.json.

    python bench/bench_coco.py                 # ~5-8 min on a loaded 2-core machine
    python bench/bench_coco.py --target-mb 20  # quick check
"""
import argparse, json, os, resource, subprocess, sys, tempfile, textwrap, time, shutil
from pathlib import Path
import numpy as np

H, W = 520, 704


def cells_of_image(rng, gx=20, gy=17):
    "Star-shaped polygons on a jittered grid (some touch or overlap), 20-40 float vertices each"
    out = []
    for j in range(gy):
        for i in range(gx):
            cx = (i + 0.5) * W / gx + rng.uniform(-6, 6); cy = (j + 0.5) * H / gy + rng.uniform(-6, 6)
            n = int(rng.integers(20, 41)); r = rng.uniform(7, 15)
            t = np.sort(rng.uniform(0, 2 * np.pi, n)); rad = r * rng.uniform(0.75, 1.0, n) * (1 + 0.3 * np.cos(2 * t + rng.uniform(0, 6)))
            x = np.clip(cx + rad * np.cos(t), 0, W); y = np.clip(cy + rad * np.sin(t), 0, H)
            out.append(np.round(np.stack([x, y], 1), 2))
    return out


def generate(dest: Path, target_mb: float, seed: int = 0):
    "Write `keyed.json` (LIVECell form) and `list.json` (same annotations, list form) of >= target_mb"
    rng = np.random.default_rng(seed)
    def ann_text(aid, iid, p):
        x0, y0 = p.min(0); x1, y1 = p.max(0)
        a = 0.5 * abs(np.dot(p[:, 0], np.roll(p[:, 1], 1)) - np.dot(p[:, 1], np.roll(p[:, 0], 1)))
        return json.dumps({'id': aid, 'image_id': iid, 'category_id': 1, 'segmentation': [p.ravel().tolist()],
                           'area': float(a), 'bbox': [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], 'iscrowd': 0})
    pilot = sum(len(ann_text(10**6, 10**6, p)) + 12 for p in cells_of_image(np.random.default_rng(seed + 1)))
    n_img = int(np.ceil(target_mb * 2**20 / pilot * 1.02))
    names = [f"{['A172', 'BT474', 'BV2', 'Huh7', 'MCF7', 'SHSY5Y', 'SkBr3', 'SKOV3'][k % 8]}_Phase_S{k:05d}_1_00d00h00m_1.tif" for k in range(n_img)]
    images = [{'id': 100000 + k, 'width': W, 'height': H, 'file_name': fn} for k, fn in enumerate(names)]
    head = {'info': {'description': 'synthetic LIVECell-scale benchmark'}, 'licenses': [],
            'categories': [{'supercategory': 'cell', 'id': 1, 'name': 'cell'}], 'images': images}
    pre = json.dumps(head)[:-1] + ', "annotations": '
    aid, n_cells = 500000, 0
    with open(dest/'keyed.json', 'w') as fk, open(dest/'list.json', 'w') as fl:
        fk.write(pre + '{'); fl.write(pre + '[')
        for k in range(n_img):
            for p in cells_of_image(rng):
                s = ann_text(aid, 100000 + k, p); sep = ', ' if n_cells else ''
                fk.write(f'{sep}"{aid}": {s}'); fl.write(sep + s)
                aid += 1; n_cells += 1
        fk.write('}}'); fl.write(']}')
    return n_img, n_cells


OURS = r'''
import json, resource, sys, time, warnings
warnings.simplefilter('ignore')
from cellseg_nb.data.labelcache import CocoLabels
ann, cache = sys.argv[1], sys.argv[2]
t, c = time.perf_counter(), time.process_time(); cl = CocoLabels(ann, cache_dir=cache, progress=False)
t_conv, cpu_conv = time.perf_counter() - t, time.process_time() - c
t = time.perf_counter(); cl2 = CocoLabels(ann, cache_dir=cache, progress=False); t_reopen = time.perf_counter() - t
t = time.perf_counter(); n = sum(int(cl2.labels(i).max()) for i in range(len(cl2))); t_epoch = time.perf_counter() - t
print(json.dumps(dict(t_convert=t_conv, cpu_convert=cpu_conv, t_reopen=t_reopen, t_epoch_read=t_epoch, n_images=len(cl), n_cells=n,
                      rasterised_first=cl.n_rasterised, rasterised_second=cl2.n_rasterised,
                      maxrss_self_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
'''

PYCOCO = r'''
import json, resource, sys, time, io, contextlib, numpy as np
from pycocotools.coco import COCO
ann, k = sys.argv[1], int(sys.argv[2])
t, c = time.perf_counter(), time.process_time()
with contextlib.redirect_stdout(io.StringIO()): coco = COCO(ann)
t_load, cpu_load = time.perf_counter() - t, time.process_time() - c
ids = sorted(coco.getImgIds())[:k]; n_anns = 0
t, c = time.perf_counter(), time.process_time()
for iid in ids:
    info = coco.loadImgs(iid)[0]; lab = np.zeros((info['height'], info['width']), np.int32)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[iid]))
    for j, a in enumerate(anns, 1): lab[coco.annToMask(a) > 0] = j
    n_anns += len(anns)
t_loop, cpu_loop = time.perf_counter() - t, time.process_time() - c
print(json.dumps(dict(t_load=t_load, t_loop_subset=t_loop, cpu_load=cpu_load, cpu_loop_subset=cpu_loop, subset_images=len(ids), subset_anns=n_anns,
                      n_images=len(coco.getImgIds()), n_anns=len(coco.getAnnIds()),
                      maxrss_self_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
'''


def run(code, *args):
    r = subprocess.run([sys.executable, '-c', code, *map(str, args)], capture_output=True, text=True)
    if r.returncode: sys.exit(f'benchmark child failed:\n{r.stderr[-3000:]}')
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--target-mb', type=float, default=320, help='size of the synthetic json (MB)')
    ap.add_argument('--pyco-images', type=int, default=80, help='images in the timed pycocotools loop (extrapolated)')
    ap.add_argument('--workdir', default=None, help='where to write the jsons and cache (default: a temporary folder)')
    ap.add_argument('--keep', action='store_true', help='keep the generated files')
    ap.add_argument('--out', default=str(Path(__file__).parent/'out'))
    a = ap.parse_args(argv)
    work = Path(a.workdir or tempfile.mkdtemp(prefix='bench_coco_')); work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter(); n_img, n_cells = generate(work, a.target_mb); t_gen = time.perf_counter() - t
        size_mb = (work/'keyed.json').stat().st_size / 2**20
        print(f'generated {n_img} images, {n_cells:,} cells, {size_mb:.0f} MB (+ list-form copy) in {t_gen:.0f} s')
        assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss == 0, 'no child may run before ours (peak RSS)'
        ours = run(OURS, work/'keyed.json', work/'cache')
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024   # KB on Linux; only our child so far
        print(f"ours: {ours['t_convert']:.1f} s, peak RSS {peak_mb:.0f} MB")
        pc = run(PYCOCO, work/'list.json', a.pyco_images)
        t_pc = pc['t_load'] + pc['t_loop_subset'] / pc['subset_images'] * pc['n_images']
        cpu_pc = pc['cpu_load'] + pc['cpu_loop_subset'] / pc['subset_images'] * pc['n_images']
        res = dict(json_mb=size_mb, n_images=n_img, n_cells=n_cells, generate_s=t_gen,
                   ours_convert_s=ours['t_convert'], ours_second_run_open_s=ours['t_reopen'], ours_epoch_read_s=ours['t_epoch_read'],
                   ours_rasterised_first_run=ours['rasterised_first'], ours_rasterised_second_run=ours['rasterised_second'],
                   ours_peak_rss_mb=peak_mb, ours_peak_rss_over_json=peak_mb / size_mb,
                   pycoco_load_s=pc['t_load'], pycoco_loop_subset_s=pc['t_loop_subset'], pycoco_subset_images=pc['subset_images'],
                   pycoco_total_extrapolated_s=t_pc, pycoco_peak_rss_mb=pc['maxrss_self_mb'],
                   speedup_vs_pycocotools=t_pc / ours['t_convert'],
                   ours_convert_cpu_s=ours['cpu_convert'], pycoco_total_extrapolated_cpu_s=cpu_pc,
                   speedup_vs_pycocotools_cpu=cpu_pc / ours['cpu_convert'],
                   cells_per_s_ours=n_cells / ours['t_convert'], cells_per_s_pycoco_loop=pc['subset_anns'] / pc['t_loop_subset'])
        rows = [('json size (dict-keyed, LIVECell form)', f'{size_mb:.0f} MB, {n_img} images, {n_cells:,} cells'),
                ('ours: json -> cached label images', f"{ours['t_convert']:.1f} s ({res['cells_per_s_ours']:,.0f} cells/s)"),
                ('pycocotools: COCO() load', f"{pc['t_load']:.1f} s"),
                ('pycocotools: annToMask loop', f"{pc['t_loop_subset']:.1f} s on {pc['subset_images']} images -> "
                                                f"{t_pc - pc['t_load']:.0f} s extrapolated to {pc['n_images']}"),
                ('speed-up vs pycocotools (target >= 10x)', f"{res['speedup_vs_pycocotools']:.1f}x wall "
                                                            f"({t_pc:.0f} s / {ours['t_convert']:.1f} s)"),
                ('  same in CPU time (robust to machine load)', f"{res['speedup_vs_pycocotools_cpu']:.1f}x "
                                                              f"({cpu_pc:.0f} s / {ours['cpu_convert']:.1f} s)"),
                ('ours peak RSS / json size (target < 2x)', f"{peak_mb:.0f} MB / {size_mb:.0f} MB = {res['ours_peak_rss_over_json']:.2f}x"),
                ('pycocotools peak RSS', f"{pc['maxrss_self_mb']:.0f} MB"),
                ('second run: open cache / read 1 epoch', f"{ours['t_reopen']:.2f} s / {ours['t_epoch_read']:.1f} s, "
                                                          f"rasterised {ours['rasterised_second']} images")]
        w = max(len(r[0]) for r in rows)
        print('\n'.join(f'{k:<{w}}  {v}' for k, v in rows))
        out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
        (out/'bench_coco.json').write_text(json.dumps(res, indent=1))
        print(f"written {out/'bench_coco.json'}")
    finally:
        if not a.keep and not a.workdir: shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__': sys.exit(main())
