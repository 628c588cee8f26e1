"""Feeding the GPU (issue 15): loader throughput, loader wait, train step against smp's, prediction throughput.

One script a GPU session runs in about 5 minutes; on a CPU `--tiny` runs the same code at toy sizes (a test).

1. Loader, CPU proxy: samples per second per CPU core that the loader delivers. Peer: today's CPU path
   (`CellDataset` + `get_transforms('default')` + `make_targets` per sample); ours: `WindowDataset` (windows only;
   augmentation and targets run on the device, `DeviceAugment`), and `DeviceAugment`'s own rate on this device.
   Target: >= 4x the peer. Plus the crop statistics of both paths (same distribution).
2. Loader wait: the share of each training step spent waiting for the loader (`fit`'s `data_wait`), with 2 and 8
   workers, device augmentation on. Target: <= 10% with 2 workers at batch 16, 512², `unet_effv2_s` on an H200.
3. Train step (CUDA events / wall clock): `MultiHeadUNet` + `MultiTaskLoss` against smp
   `Unet('tu-tf_efficientnetv2_s')` + Dice/BCE, same batch, size and precision: eager, channels_last, compiled.
   Target: our best >= 1.5x smp's eager step.
4. Prediction: images per second of `segment` on 704x520 images, start-up excluded.

    python bench/bench_gpu.py            # the full run (a GPU session)
    python bench/bench_gpu.py --tiny     # toy sizes on any machine (tests/test_bench_gpu.py)

Writes bench/results/gpu.json on a GPU, bench/results/gpu_cpu_proxy.json without one (or bench/out/gpu_tiny.json with --tiny).
"""
from __future__ import annotations
import argparse, json, os, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cellseg_nb.core import shared_data
from cellseg_nb.predict import default_workers

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()

def source(tiny):
    "The 5 annotated LIVECell images of ../shared when present, else synthetic ones"
    from cellseg_nb.core import shared_data
    from cellseg_nb.data.sources import CocoSource, synthetic_source
    d = shared_data()
    if d is not None and (Path(d)/'livecell-sample').exists():
        d = Path(d)/'livecell-sample'
        return CocoSource(d/'livecell_coco_val.json', d/'images', cache_dir=Path(tempfile.gettempdir())/'cellseg-bench-cache', progress=False), 'livecell-sample'
    return synthetic_source(5, seed=0, shape=(520, 704)), 'synthetic'

def rate(fn, n, warm=2):
    "calls per second of `fn` (after `warm` calls)"
    for _ in range(warm): fn()
    t = time.perf_counter()
    for _ in range(n): fn()
    return n / (time.perf_counter() - t)

def loader_proxy(src, crop, n, dev, bs):
    "Samples/s on one core: CPU path vs windows only; DeviceAugment samples/s on `dev`; crop statistics of both paths"
    from cellseg_nb.data.datasets import CellDataset, collate
    from cellseg_nb.data.devaug import WindowDataset, DeviceAugment
    from cellseg_nb.augment import get_transforms
    torch.set_num_threads(1)
    cpu = CellDataset(src, get_transforms('default', crop_size=crop, seed=0), crop)
    aug = DeviceAugment('default', crop); win = WindowDataset(src, crop, aug.margin)
    k = iter(range(10**9))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        r_cpu = rate(lambda: cpu[next(k) % len(src)], n)
        r_win = rate(lambda: win[next(k) % len(src)], n * 4)
    torch.set_num_threads(os.cpu_count() or 1)
    batch = {key: (v.to(dev) if torch.is_tensor(v) else v) for key, v in collate([win[j % len(src)] for j in range(bs)]).items()}
    def dev_call(): aug(batch, seed=next(k)); sync(dev)
    r_dev = rate(dev_call, max(2, n // bs)) * bs
    return dict(crop=crop, cpu_path_samples_per_s_per_core=r_cpu, window_samples_per_s_per_core=r_win, ratio_window_vs_cpu_path=r_win / r_cpu,
                device_augment_samples_per_s=r_dev, device=str(dev))

def loader_wait(src, model, crop, bs, steps, workers, dev_aug, mp):
    "`fit`'s data_wait share and seconds per step for `workers` loader workers"
    from cellseg_nb.train import train
    from cellseg_nb.data.sources import ArraySource
    out = Path(tempfile.mkdtemp())/'run'
    from cellseg_nb.loop import read_log
    items = [src.read(i) for i in range(len(src))]
    d = out.parent/'data'; (d/'images').mkdir(parents=True)
    import tifffile
    for i, (img, lab) in enumerate(items):
        tifffile.imwrite(d/'images'/f'img{i}.tif', img); tifffile.imwrite(d/'images'/f'img{i}_masks.tif', lab.astype(np.uint16))
    train(out=str(out), data_folder=str(d/'images'), model=model, crop_size=crop, batch_size=bs, num_workers=workers, max_steps=steps,
          samples_per_epoch=bs * steps, log_every=5, progress=False, device_augment=dev_aug, mixed_precision=mp, tune_postprocess=False,
          cell_diameter=None, val_fraction=0)
    recs = [r for r in read_log(out) if 'loss' in r][1:] or [r for r in read_log(out) if 'loss' in r]
    return dict(workers=workers, device_augment=dev_aug, data_wait=float(np.mean([r['data_wait'] for r in recs])),
                sec_per_step=float(np.median([r['sec_per_step'] for r in recs])))

def step_times(encoder_cfg, smp_encoder, crop, bs, dev, reps, compile_modes):
    "Median train step (s) of ours and smp's, per variant"
    import segmentation_models_pytorch as smp
    from cellseg_nb.models.unet import create_model
    from cellseg_nb.losses import MultiTaskLoss
    from cellseg_nb.data.targets import make_targets, voronoi_labels
    lab = voronoi_labels((crop, crop), max(8, crop * crop // 400), 9, seed=0)
    t = make_targets(lab, 0)
    batch = dict(image=torch.randn(bs, 1, crop, crop), **{k: torch.from_numpy(v)[None].repeat(bs, *[1] * v.ndim) for k, v in t.items()},
                 labels=torch.from_numpy(lab.astype(np.int64))[None].repeat(bs, 1, 1), cls=torch.zeros(bs, dtype=torch.long))
    batch = {k: v.to(dev) for k, v in batch.items()}
    precs = ['bf16'] if dev.type == 'cuda' else ['fp32']
    def timed(model, loss_fn, prec, cl, comp):
        model = model.to(dev).train()
        if cl: model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), 1e-3, **({'fused': True} if dev.type == 'cuda' else {}))
        fwd = torch.compile(model, mode=comp) if comp else model
        x = batch['image'].contiguous(memory_format=torch.channels_last) if cl else batch['image']
        dt = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(prec)
        def step():
            with torch.autocast(dev.type, dtype=dt, enabled=dt is not None):
                loss = loss_fn(fwd(x))
            loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        for _ in range(3): step()
        sync(dev); ts = []
        for _ in range(reps):
            t0 = time.perf_counter(); step(); sync(dev); ts.append(time.perf_counter() - t0)
        return float(np.median(ts))
    mtl = MultiTaskLoss()
    ours_loss = lambda out: mtl(out, batch)[0]
    def smp_loss(out):
        fg = batch['fg']; p = torch.sigmoid(out.float())
        dice = 1 - (2 * (p * fg).sum() + 1) / (p.sum() + fg.sum() + 1)
        return torch.nn.functional.binary_cross_entropy_with_logits(out.float(), fg) + dice
    res = {}
    for prec in precs:
        for cl in (False, True):
            for comp in [None] + list(compile_modes if cl else []):
                name = f"{prec}{'+channels_last' if cl else ''}{'+compile:' + comp if comp else ''}"
                torch.manual_seed(0); res[f'ours {name}'] = timed(create_model(encoder_cfg, num_classes=8), ours_loss, prec, cl, comp)
                if not comp:
                    torch.manual_seed(0)
                    res[f'smp {name}'] = timed(smp.Unet(smp_encoder, encoder_weights=None, in_channels=1, classes=1), smp_loss, prec, cl, None)
    smp_eager = res[f'smp {precs[0]}']
    best = min((v, k) for k, v in res.items() if k.startswith('ours'))
    return dict(crop=crop, batch=bs, seconds=res, ours_best=best[1], speedup_ours_best_vs_smp_eager=smp_eager / best[0])

def predict_rate(model_name, n, dev, workers=(0,), hw=(520, 704)):
    "Images per second of `predict_files` end to end (maps, cells, written files), start-up excluded: (n + 1 images) minus (1 image), per worker count"
    import tempfile, tifffile
    from cellseg_nb.models.unet import create_model
    from cellseg_nb.predict import predict_files
    m = create_model(model_name, num_classes=8).to(dev).eval()
    d = Path(tempfile.mkdtemp()); (d/'in').mkdir()
    real = sorted((shared_data('livecell-sample') or d/'none').glob('images/*/*.tif'))
    for i in range(n + 1):
        img = tifffile.imread(real[i % len(real)]) if real else np.random.default_rng(i).normal(100, 20, hw).clip(0, 255).astype(np.uint8)
        tifffile.imwrite(d/'in'/f'img{i:03d}.tif', img)
    files = sorted((d/'in').iterdir()); out = {}
    for w in workers:
        t = []
        for fs in (files[:1], files):
            sync(dev); t0 = time.perf_counter()
            predict_files(m, fs, d/f'out_{w}_{len(fs)}', device=dev, workers=w, progress=False)
            sync(dev); t.append(time.perf_counter() - t0)
        out[f'workers={w}'] = n / max(t[1] - t[0], 1e-9)
    return dict(images=n, size=list(tifffile.imread(files[0]).shape), images_per_s=out, real_images=bool(real),
                path='predict_files: maps here, post-processing and writing in `workers` processes (untrained model)')

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--tiny', action='store_true', help='toy sizes on any machine (a test of this script)')
    a = ap.parse_args(argv)
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    src, data = source(a.tiny)
    if a.tiny: S = dict(crop=64, loader_crop=96, bs=2, n=6, model='unet_test', enc='unet_test', smp='tu-tf_efficientnetv2_b0', steps=6, reps=2, pred=1, modes=())
    elif dev.type == 'cuda': S = dict(crop=512, loader_crop=512, bs=16, n=40, model='unet_effv2_s', enc='unet_effv2_s', smp='tu-tf_efficientnetv2_s', steps=60, reps=10, pred=20,
                                      modes=('default', 'max-autotune-no-cudagraphs'))
    else: S = dict(crop=256, loader_crop=512, bs=4, n=40, model='unet_effv2_b0', enc='unet_effv2_b0', smp='tu-tf_efficientnetv2_b0', steps=20, reps=3, pred=4, modes=())
    out = dict(machine=dict(device=torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu', cpus=os.cpu_count(), torch=torch.__version__),
               data=data, sizes={k: v for k, v in S.items() if k != 'modes'})
    t0 = time.perf_counter()
    out['loader'] = loader_proxy(src, S['loader_crop'], S['n'], dev, S['bs']); print('loader', json.dumps(out['loader']), flush=True)
    mp = 'auto'
    workers = (2, 8) if dev.type == 'cuda' else (2,) if a.tiny else (2, 0)
    out['loader_wait'] = [loader_wait(src, S['model'], S['crop'], S['bs'], S['steps'], w, True, mp) for w in workers]
    if not a.tiny and dev.type == 'cpu': out['loader_wait'].append(loader_wait(src, S['model'], S['crop'], S['bs'], S['steps'], 2, False, mp))
    print('loader_wait', json.dumps(out['loader_wait']), flush=True)
    out['step'] = step_times(S['enc'], S['smp'], S['crop'], S['bs'], dev, S['reps'], S['modes']); print('step', json.dumps(out['step']), flush=True)
    out['predict'] = predict_rate(S['model'], S['pred'], dev, (0, 1) if a.tiny else (0, default_workers(dev)) if dev.type == 'cuda' else (0,)); print('predict', json.dumps(out['predict']), flush=True)
    out['wall_s'] = time.perf_counter() - t0
    dest = ROOT/('bench/out/gpu_tiny.json' if a.tiny else 'bench/results/gpu.json' if dev.type == 'cuda' else 'bench/results/gpu_cpu_proxy.json')
    dest.parent.mkdir(parents=True, exist_ok=True); dest.write_text(json.dumps(out, indent=1))
    print(f"wrote {dest} ({out['wall_s']:.0f} s)")
    return out

if __name__ == '__main__': main()
