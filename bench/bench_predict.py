"""Benchmark `cellseg_nb.predict`: CPU speed of tiled prediction and peak memory on huge images.

Speed: megapixels per second of `predict` (tile 512, overlap 64, batch 4) for `unet_effv2_b0` and
`unet_effv2_s` (pretrained=False: weights don't change speed) on a synthetic 1024x1024 phase-contrast
image, without TTA and with 8-fold TTA (`d4`), and on a LIVECell-sized 520x704 image (one tile: `tile_len`), and the share of time spent in post-processing. The peer,
measured in the same run, is the untiled whole-image call `infer.infer_probs` + `instances_from_probs`
(the same engine, `cellseg_nb.infer`, given the whole image as one tile; `cellseg evaluate` used it before issue 12): ratio = MP/s of `predict` / MP/s of the peer.

Memory: peak resident memory of one `predict` + `write_outputs` (labels tif, cells csv, overlay png) call on
2048², 4096² and 8192² uint8 inputs, each in a fresh subprocess: (ru_maxrss at the end - ru_maxrss after
model load and one warm-up batch of tiles) / pixels (also reported without the warm-up). Uses the tiny
`unet_test` model, trained for 100 steps on synthetic images so that its maps hold cells (memory of the stitched maps, accumulators and
post-processing does not depend on the encoder; the effv2 activations of one batch of tiles are a fixed cost).
Targets: <= 16 bytes per input pixel at 8192², growth from 2048² to 8192² no steeper than the pixel count.

    python bench/bench_predict.py [--threads 1] [--sizes 2048 4096 8192] [--skip-speed] [--skip-memory]

Prints the figures and writes bench/out/bench_predict.json.
"""
import argparse, json, os, resource, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

OUT = Path(__file__).resolve().parent/'out'

def synth(n:int, seed:int=0, w:int|None=None) -> np.ndarray:
    "A synthetic phase-contrast image of n×w px (default square; a 1024² synthetic LIVECell-like image tiled)"
    from cellseg_nb.data.synth import synth_image
    base, _, _ = synth_image(seed, 'mixed', shape=(1024, 1024), density=0.4); w = w or n
    return np.tile(base, (max(-(-n // 1024), 1), max(-(-w // 1024), 1)))[:n, :w]

def speed(threads:int, n:int=1024, shapes=((520, 704),)) -> list:
    import torch
    from cellseg_nb.models.unet import create_model
    from cellseg_nb.infer import infer_maps, instances_blockwise, infer_probs
    from cellseg_nb.postprocess import instances_from_probs
    from cellseg_nb.core import normalize_image
    torch.set_num_threads(threads)
    rows = []
    cases = [((n, n), (False, 'd4'))] + [(hw, (False,)) for hw in shapes]
    for ((h, w), ttas), cfg in [(c, m) for c in cases for m in ('unet_effv2_b0', 'unet_effv2_s')]:
        img = synth(h, w=w); mp = img.size / 1e6
        model = create_model(cfg, pretrained=False).eval()
        t = time.perf_counter(); instances_from_probs(infer_probs(model, normalize_image(img))); t_peer = time.perf_counter() - t
        for tta in ttas:
            t0 = time.perf_counter(); maps = infer_maps(model, img, tile=512, overlap=64, tta=tta, batch_size=4)
            t1 = time.perf_counter(); instances_blockwise(maps, model.config['postprocess'], progress=False); t2 = time.perf_counter()
            r = dict(model=cfg, tta=tta or 'none', image=f'{h}x{w}', seconds=round(t2 - t0, 2), mp_per_s=round(mp / (t2 - t0), 4),
                     postprocess_share=round((t2 - t1) / (t2 - t0), 3), peer_seconds=round(t_peer, 2),
                     ratio_vs_peer=round(t_peer / (t2 - t0), 3))
            print(json.dumps(r), flush=True); rows.append(r)
    return rows

CHILD = r"""
import sys, resource, time, numpy as np, torch, tifffile
torch.set_num_threads(int(sys.argv[3]))
from cellseg_nb.models.unet import create_model
from cellseg_nb.predict import predict
from cellseg_nb.writers import write_outputs
from cellseg_nb.core import read_image
from cellseg_nb.models.unet import load_model
import skimage.segmentation, skimage.measure, tqdm.auto, PIL.Image, pycocotools.mask   # lazy imports of the run, loaded up front
model = load_model(sys.argv[4])
base0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with torch.inference_mode(): model(torch.zeros(4, 1, 512, 512))   # one batch of tiles: the model's fixed activation memory
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t = time.perf_counter()
img = read_image(sys.argv[1])
labels, cells = predict(model, img, tile=512, overlap=64, batch_size=4, progress=False)
write_outputs(sys.argv[2], 'big', img, labels, cells, model.config['class_names'])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(base0, base, peak, time.perf_counter() - t, len(cells))
"""

def quick_model(folder, steps:int=100):
    "`unet_test` trained for a few steps on synthetic images, so its maps hold cells (an untrained one finds none)"
    import torch, torch.nn.functional as F
    from cellseg_nb.models.unet import create_model, save_model
    from cellseg_nb.data.synth import synth_image
    from cellseg_nb.postprocess import probs_from_labels
    from cellseg_nb.core import normalize_image, set_seed
    set_seed(0); data = [synth_image(s, 'round', shape=(192, 192), density=0.4) for s in range(6)]
    X = torch.tensor(np.stack([normalize_image(d[0]) for d in data]))[:, None]
    P = [probs_from_labels(d[1]) for d in data]
    T = {h: torch.tensor(np.stack([q[h] for q in P]))[:, None] for h in ('fg', 'boundary', 'dist')}
    model = create_model('unet_test'); opt = torch.optim.AdamW(model.parameters(), 3e-3); model.train()
    for _ in range(steps):
        i = torch.randint(0, len(data), (4,)); y, x = np.random.randint(0, 64, 2)
        out = model(X[i, :, y:y+128, x:x+128])
        loss = sum(F.binary_cross_entropy_with_logits(out[h], T[h][i, :, y:y+128, x:x+128]) for h in T)
        opt.zero_grad(); loss.backward(); opt.step()
    return save_model(model.eval(), folder)

def memory(sizes, threads:int) -> list:
    import tifffile, torch
    torch.set_num_threads(threads)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        model_dir = quick_model(Path(d)/'model')
        for n in sizes:
            p = Path(d)/f'img{n}.tif'; tifffile.imwrite(p, synth(n))
            r = subprocess.run([sys.executable, '-c', CHILD, str(p), str(Path(d)/'out'), str(threads), str(model_dir)], capture_output=True, text=True)
            if r.returncode: print(r.stderr[-2000:]); raise SystemExit(f'memory run for {n}² failed')
            base0, base, peak, secs, ncells = r.stdout.split()[-5:]
            base0, base, peak = int(base0), int(base), int(peak)
            row = dict(size=f'{n}x{n}', pixels=n * n, model_loaded_mb=round(base0 / 2**20), baseline_mb=round(base / 2**20), peak_mb=round(peak / 2**20),
                       bytes_per_pixel=round((peak - base) / (n * n), 2), bytes_per_pixel_incl_tile_activations=round((peak - base0) / (n * n), 2),
                       seconds=round(float(secs), 1), cells=int(ncells))
            print(json.dumps(row), flush=True); rows.append(row); p.unlink()
    if len(rows) > 1:
        g = (rows[-1]['peak_mb'] - rows[-1]['baseline_mb']) / max(rows[0]['peak_mb'] - rows[0]['baseline_mb'], 1)
        px = rows[-1]['pixels'] / rows[0]['pixels']
        print(f"growth {rows[0]['size']} -> {rows[-1]['size']}: memory x{g:.1f} for pixels x{px:.0f}")
    return rows

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--threads', type=int, default=1, help='torch threads (1 on a shared machine avoids oversubscription)')
    ap.add_argument('--sizes', type=int, nargs='+', default=[2048, 4096, 8192])
    ap.add_argument('--speed-size', type=int, default=1024)
    ap.add_argument('--skip-speed', action='store_true'); ap.add_argument('--skip-memory', action='store_true')
    a = ap.parse_args(argv)
    res = dict(threads=a.threads, cpu=os.cpu_count(), load=os.getloadavg()[0])
    if not a.skip_memory: res['memory'] = memory(a.sizes, a.threads)
    if not a.skip_speed: res['speed'] = speed(a.threads, a.speed_size)
    OUT.mkdir(exist_ok=True)
    (OUT/'bench_predict.json').write_text(json.dumps(res, indent=1))
    print(f"wrote {OUT/'bench_predict.json'}")

if __name__ == '__main__': main()
