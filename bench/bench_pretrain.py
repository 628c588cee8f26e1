"""Pretraining throughput on this CPU, per method, against supervised training of the same model (the peer).

One optimiser step = forward + backward + AdamW step on a batch of B images; a pretraining sample is
one image seen as 2 augmented views (2 crops), a supervised sample is 1 crop with the 5 heads and
`MultiTaskLoss`. Reported: images/s (source images) and crops/s, and the ratio of crops/s to the
supervised peer's, measured in the same run. The data pipeline (`UnlabelledImages`: read, 2 strong-
augmented views, patch masks) is timed separately, per sample, on the real LIVECell sample when present.

Run:  python bench/bench_pretrain.py [--config unet_effv2_b0] [--crop 128] [--batch 8] [--steps 4]
Writes bench/out/bench_pretrain.json
"""
from __future__ import annotations
import argparse, json, time, tempfile
from pathlib import Path
import numpy as np
import torch

from cellseg_nb.core import shared_data, set_seed
from cellseg_nb.models.unet import create_model
from cellseg_nb.losses import MultiTaskLoss
from cellseg_nb.pretrain import PretrainModel, PretrainLoss, UnlabelledImages, patch_mask, METHODS

OUT = Path(__file__).resolve().parent / 'out'


def time_steps(model, loss_fn, batch, steps, warmup=1):
    opt = torch.optim.AdamW(model.parameters(), 1e-4); model.train()
    ts = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        loss, _ = loss_fn(model(batch['image']), batch)
        opt.zero_grad(); loss.backward(); opt.step()
        if i >= warmup: ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def supervised_batch(B, c, K=8):
    lab = torch.zeros(B, c, c, dtype=torch.int64); lab[:, c//4:c//2, c//4:c//2] = 1
    fg = (lab > 0).float()[:, None]
    return dict(image=torch.randn(B, 1, c, c), fg=fg, boundary=torch.zeros_like(fg), dist=fg * 0.5,
                type=(lab > 0).long() * 3, cls=torch.full((B,), 2, dtype=torch.int64))


def pretrain_batch(B, c):
    tgt = torch.randn(B, 2, 1, c, c)
    m = torch.from_numpy(np.stack([patch_mask(c, c, 32, 0.4) for _ in range(2 * B)]).reshape(B, 2, 1, c, c).astype(np.float32))
    return dict(image=torch.where(m.bool(), tgt.mean(), tgt), target=tgt, mask=m)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--config', default='unet_effv2_b0'); ap.add_argument('--crop', type=int, default=128)
    ap.add_argument('--batch', type=int, default=8); ap.add_argument('--steps', type=int, default=4)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads); set_seed(0)
    B, c, res = a.batch, a.crop, {}
    print(f"{a.config}, {c}x{c} crops, batch {B} images, {a.threads} threads, median of {a.steps} steps")
    m = create_model(a.config)
    dt = time_steps(m, MultiTaskLoss(), supervised_batch(B, c), a.steps)
    res['supervised (peer)'] = dict(sec_per_step=dt, images_per_s=B / dt, crops_per_s=B / dt)
    for meth in METHODS:
        pm = PretrainModel(create_model(a.config), meth)
        dt = time_steps(pm, PretrainLoss(meth), pretrain_batch(B, c), a.steps)
        res[meth] = dict(sec_per_step=dt, images_per_s=B / dt, crops_per_s=2 * B / dt)
    peer = res['supervised (peer)']['crops_per_s']
    print(f"{'':18s} {'s/step':>7s} {'images/s':>9s} {'crops/s':>8s} {'crops/s vs supervised':>22s}")
    for k, v in res.items():
        v['crops_vs_supervised'] = v['crops_per_s'] / peer
        print(f"{k:18s} {v['sec_per_step']:7.2f} {v['images_per_s']:9.2f} {v['crops_per_s']:8.2f} {v['crops_vs_supervised']:21.2f}x")
    root = shared_data('livecell-sample')
    if root is not None:  # the data pipeline: read (cached after the first pass) + 2 strong views + masks
        ds = UnlabelledImages(root / 'images' / 'livecell_train_val_images', c, 'strong', mask_ratio=0.4)
        for i in range(len(ds)): ds.read(i)
        t = time.perf_counter(); n = 2 * len(ds)
        for i in range(n): ds[i % len(ds)]
        res['data_pipeline'] = dict(samples_per_s=n / (time.perf_counter() - t), note='one process; num_workers scales it')
        print(f"data pipeline (704x520 LIVECell, 2 strong views + masks): {res['data_pipeline']['samples_per_s']:.1f} images/s per worker")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / 'bench_pretrain.json').write_text(json.dumps(dict(args=vars(a), results=res), indent=1))
    print(f"wrote {OUT / 'bench_pretrain.json'}")


if __name__ == '__main__':
    main()
