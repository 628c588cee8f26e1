"""Augmentation throughput vs. training-step consumption, measured in the same run.

Per preset (`default`, `strong`): augmented 512x512 crops per second in one process (= one loader worker,
1 OpenCV thread), with and without head-target computation (`cellseg_nb.data.targets.make_targets`), and the
delivery rate of a 2-worker `DataLoader` (batch 8, augmentation + targets). Peer: one CPU train step of the
model at `tf_efficientnetv2_b0` (batch 8, 512x512, 1 channel, forward + loss + backward + AdamW, all cores),
measured before and after the loaders so that load from other processes falls on both. Reported ratio:
loader samples/s / train-step samples/s (target >= 3).

Images: the real 704x520 LIVECell images with annotations in `../shared/data/livecell-sample` (5 images),
synthetic 704x520 label images otherwise.

    python bench/bench_augment.py                      # default: 48 samples/preset, 12 batches, 2+2 steps
    python bench/bench_augment.py --samples 100 --batches 20 --steps 5

Results are printed and written to bench/out/bench_augment.json.
"""
from __future__ import annotations
import argparse, json, statistics, time, io, contextlib
from pathlib import Path
import numpy as np

CROP, BATCH = 512, 8


def load_images() -> tuple[list, str]:
    "(image, labels) pairs of 704x520 images: real LIVECell when available, synthetic otherwise"
    from cellseg_nb.core import shared_data, read_image, normalize_image
    root = shared_data('livecell-sample')
    if root is not None:
        from pycocotools.coco import COCO
        with contextlib.redirect_stdout(io.StringIO()): coco = COCO(str(root/'livecell_coco_val.json'))
        pairs = []
        for iid in sorted(coco.getImgIds()):
            info = coco.loadImgs(iid)[0]
            lab = np.zeros((info['height'], info['width']), np.int32)
            for k, a in enumerate(coco.loadAnns(coco.getAnnIds(imgIds=iid)), 1): lab[coco.annToMask(a) > 0] = k
            pairs.append((normalize_image(read_image(root/'images'/'livecell_train_val_images'/info['file_name'])), lab))
        return pairs, f'livecell-sample ({len(pairs)} annotated 704x520 images)'
    from cellseg_nb.data.targets import voronoi_labels
    rng = np.random.default_rng(0)
    pairs = []
    for s in range(5):
        lab = voronoi_labels((520, 704), n_cells=300, seed=s).astype(np.int32)
        pairs.append(((0.4 + 0.4 * (lab > 0) + 0.05 * rng.standard_normal(lab.shape)).astype(np.float32), lab))
    return pairs, 'synthetic (5 Voronoi 704x520 label images)'


def get_make_targets():
    try:
        from cellseg_nb.data.targets import make_targets
        return make_targets
    except ImportError: return None


class AugDataset:
    "Map-style dataset: random image -> augmented 512 crop -> tensors (+ targets)"
    def __init__(self, pairs, t, n, targets=True):
        self.pairs, self.t, self.n = pairs, t, n
        self.make_targets = get_make_targets() if targets else None
    def __len__(self): return self.n
    def __getitem__(self, i):
        import torch
        img, lab = self.pairs[i % len(self.pairs)]
        o = self.t(image=img, mask=lab)
        s = {'image': torch.from_numpy(o['image'][None]), 'labels': torch.from_numpy(o['mask'].astype(np.int64))}
        if self.make_targets is not None:
            s.update({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.make_targets(o['mask']).items()})
        return s


def per_worker_rate(pairs, preset, n, targets) -> float:
    "Samples/s of one process with one OpenCV thread (what one DataLoader worker does)"
    import cv2
    from cellseg_nb.augment import get_transforms
    cv2.setNumThreads(1)
    ds = AugDataset(pairs, get_transforms(preset, crop_size=CROP, seed=0), n, targets)
    ds[0]  # warm-up
    t0 = time.perf_counter()
    for i in range(n): ds[i]
    return n / (time.perf_counter() - t0)


def loader_rate(pairs, preset, batches, workers=2) -> float:
    "Samples/s delivered by a `workers`-process DataLoader, after its first batch (start-up excluded)"
    import torch
    from torch.utils.data import DataLoader
    from cellseg_nb.augment import get_transforms
    ds = AugDataset(pairs, get_transforms(preset, crop_size=CROP, seed=0), BATCH * (batches + 1), targets=True)
    dl = DataLoader(ds, batch_size=BATCH, num_workers=workers, shuffle=False)
    it = iter(dl); next(it)
    t0 = time.perf_counter()
    k = sum(1 for _ in it)
    return k * BATCH / (time.perf_counter() - t0)


def train_steps(steps, warmup=1) -> tuple[list, str]:
    "Seconds per CPU train step of the b0 model, batch 8, 512x512, 1 channel"
    import torch, torch.nn.functional as F
    torch.manual_seed(0)
    x = torch.randn(BATCH, 1, CROP, CROP)
    fg = F.interpolate((torch.rand(BATCH, 1, CROP // 16, CROP // 16) > 0.6).float(), size=(CROP, CROP))
    try:
        from cellseg_nb.models.unet import create_model
        from cellseg_nb.losses import MultiTaskLoss
        model, crit = create_model('unet_effv2_b0'), MultiTaskLoss()
        tgt = dict(fg=fg, boundary=fg * 0, dist=fg * 0.5, type=fg[:, 0].long(), cls=torch.zeros(BATCH, dtype=torch.long))
        loss_fn, name = (lambda: crit(model(x), tgt)[0]), "cellseg_nb MultiHeadUNet 'unet_effv2_b0' + MultiTaskLoss"
    except Exception as e:  # the model stage is not there: smp stand-in
        import segmentation_models_pytorch as smp
        model = smp.Unet('tu-tf_efficientnetv2_b0', encoder_weights=None, in_channels=1, classes=5)
        loss_fn = lambda: F.binary_cross_entropy_with_logits(model(x)[:, :1], fg)
        name = f"STAND-IN smp.Unet('tu-tf_efficientnetv2_b0', classes=5) ({type(e).__name__}: {e})"
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True); loss_fn().backward(); opt.step()
        if i >= warmup: times.append(time.perf_counter() - t0)
    return times, name


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--samples', type=int, default=48, help='samples per per-worker measurement')
    ap.add_argument('--batches', type=int, default=12, help='timed batches of the 2-worker loader')
    ap.add_argument('--steps', type=int, default=2, help='timed train steps (x2: before and after the loaders)')
    ap.add_argument('--presets', default='default,strong')
    ap.add_argument('--threads', type=int, default=0, help='torch threads of the train step (0: torch default)')
    a = ap.parse_args(argv)
    import torch, cv2
    if a.threads: torch.set_num_threads(a.threads)
    pairs, data = load_images()
    print(f'data: {data}; torch threads {torch.get_num_threads()}; make_targets: {get_make_targets() is not None}')
    step_t, model_name = train_steps(a.steps)
    print(f'train step ({model_name}): {statistics.median(step_t):.2f} s')
    res = {}
    for p in a.presets.split(','):
        nthreads = cv2.getNumThreads()
        aug = per_worker_rate(pairs, p, a.samples, targets=False)
        full = per_worker_rate(pairs, p, a.samples, targets=True)
        cv2.setNumThreads(nthreads)
        dl = loader_rate(pairs, p, a.batches)
        res[p] = dict(aug_per_worker=aug, aug_targets_per_worker=full, loader_2w=dl)
        print(f'{p:8s} per worker: {aug:6.1f} crops/s augment only, {full:6.1f} crops/s with targets | 2-worker loader {dl:6.1f} samples/s')
    t2, _ = train_steps(a.steps)
    step_t += t2
    step = statistics.median(step_t)
    consume = BATCH / step
    print(f'train step median {step:.2f} s over {len(step_t)} steps (before and after) -> consumes {consume:.2f} samples/s')
    for p, r in res.items():
        r['ratio_loader_vs_step'] = r['loader_2w'] / consume
        print(f'{p:8s} ratio 2-worker loader / train step = {r["ratio_loader_vs_step"]:.1f}x (target >= 3x)')
    out = dict(data=data, model=model_name, crop=CROP, batch=BATCH, step_s=step_t, step_median_s=step,
               consume_samples_per_s=consume, presets=res, torch_threads=torch.get_num_threads())
    Path('bench/out').mkdir(parents=True, exist_ok=True)
    Path('bench/out/bench_augment.json').write_text(json.dumps(out, indent=1))
    print('written bench/out/bench_augment.json')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
