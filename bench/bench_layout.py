"""Channels-last (NHWC) against the default contiguous (NCHW) memory layout on this machine: training and inference.

1. Training: `cellseg_nb.train.train` on the 5 annotated LIVECell images of `../shared` (the CPU defaults, as
   `cellseg train` runs them), `--steps` steps, with `channels_last=False` (the peer) and `True`, alternating
   (off, on, on, off, ...) so that load from other processes falls on both. Per run: the median `sec_per_step` of its
   logged windows after the first (warm-up), and its whole training time.
2. Inference: `cellseg_nb.predict.predict` (flips at test time, two passes for the size matching: what
   `cellseg predict` runs) on the 5 images with the model of the first training run, freshly loaded for every call,
   with the layout on (`CHANNELS_LAST_DEVICES` as shipped) and off (`CHANNELS_LAST_DEVICES = ()`, the peer),
   alternating. Also: whether the two layouts give the same cells (the fraction of pixels with the same label and
   the largest difference of their maps).

Speeds are reported as ratios NCHW time / NHWC time measured in the same run (> 1: channels-last is faster).

    CELLSEG_SHARED_DATA=../shared/data python bench/bench_layout.py [--steps 150] [--rounds 2]

Results are printed and written to bench/results/bench_layout.json (`--smoke`: a few steps of the tiny test model,
written to bench/out/).
"""
from __future__ import annotations
import argparse, json, os, platform, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'bench'))

def lc5_data(work:Path) -> dict:
    "TrainConfig data fields for all 5 annotated LIVECell images: the training fold of `lc5-usiigaci` (no validation images)"
    import realdata as R
    return R.fold_data('lc5-usiigaci', '41-45', work)

def train_run(work:Path, data:dict, steps:int, channels_last:bool, smoke:bool) -> dict:
    from cellseg_nb.train import train
    out = work/f"run_{'nhwc' if channels_last else 'nchw'}_{time.time_ns()}"
    extra = dict(model='unet_test', crop_size=64, batch_size=2) if smoke else {}
    t = time.perf_counter()
    s = train(out=str(out), seed=0, progress=False, max_steps=steps, channels_last=channels_last, **data, **extra)
    wall = time.perf_counter() - t
    log = [json.loads(l) for l in (out/'log.jsonl').read_text().splitlines() if l.strip()]
    per = [r['sec_per_step'] for r in log if 'sec_per_step' in r]
    return dict(channels_last=channels_last, steps=s['steps'], sec_per_step=statistics.median(per[1:] or per),   # the first window warms up
                train_s=s['minutes'] * 60, wall_s=wall, mixed_precision=s.get('mixed_precision'), run=str(out))

def predict_run(model_dir:str, images:list, channels_last:bool) -> dict:
    import cellseg_nb.models.unet as U
    from cellseg_nb.predict import predict
    keep = U.CHANNELS_LAST_DEVICES
    U.CHANNELS_LAST_DEVICES = keep if channels_last else ()
    try:
        model = U.load_model(model_dir)   # fresh: contiguous weights
        t = time.perf_counter(); labs = [predict(model, img, progress=False)[0] for img in images]
        return dict(channels_last=channels_last, s_per_image=(time.perf_counter() - t) / len(images)), labs
    finally: U.CHANNELS_LAST_DEVICES = keep

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=150, help='training steps per run')
    ap.add_argument('--rounds', type=int, default=2, help='pairs of training runs and of inference passes')
    ap.add_argument('--smoke', action='store_true', help='tiny model, few steps: checks that the script runs')
    a = ap.parse_args(argv)
    import torch, realdata as R
    steps = 30 if a.smoke else a.steps
    out_file = ROOT/('bench/out/bench_layout.json' if a.smoke else 'bench/results/bench_layout.json')
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp); data = lc5_data(work/'data')
        order = [False, True, True, False] * a.rounds
        runs = []
        for i, cl in enumerate(order[:2 * a.rounds]):
            runs.append(train_run(work, data, steps, cl, a.smoke))
            print(f"train {'NHWC' if cl else 'NCHW'}: {runs[-1]['sec_per_step']:.3f} s/step, {runs[-1]['train_s']:.1f} s", flush=True)
        images = [img for _, img, _ in R.lc5_items()]
        model_dir = str(Path(runs[0]['run'])/'best')
        inf, labs = [], {}
        for cl in order[:2 * a.rounds]:
            r, labs[cl] = predict_run(model_dir, images, cl); inf.append(r)
            print(f"predict {'NHWC' if cl else 'NCHW'}: {r['s_per_image']:.2f} s/image", flush=True)
        same = float(np.mean([np.mean((x > 0) == (y > 0)) for x, y in zip(labs[False], labs[True])]))
        ncells = [(int(x.max()), int(y.max())) for x, y in zip(labs[False], labs[True])]
    med = lambda rs, k, cl: statistics.median(r[k] for r in rs if r['channels_last'] == cl)
    res = dict(machine=dict(cpus=os.cpu_count(), torch=torch.__version__, torch_threads=torch.get_num_threads(), processor=platform.processor()),
               when=time.strftime('%Y-%m-%d %H:%M'), steps=steps, rounds=a.rounds, smoke=a.smoke,
               train=[{k: v for k, v in r.items() if k != 'run'} for r in runs], predict=inf,
               same_foreground=same, cells_nchw_nhwc=ncells,
               summary=dict(train_step_ratio=med(runs, 'sec_per_step', False) / med(runs, 'sec_per_step', True),
                            train_time_ratio=med(runs, 'train_s', False) / med(runs, 'train_s', True),
                            predict_ratio=med(inf, 's_per_image', False) / med(inf, 's_per_image', True)))
    out_file.parent.mkdir(parents=True, exist_ok=True); out_file.write_text(json.dumps(res, indent=1))
    print(json.dumps(res['summary'], indent=1), f"\nsame foreground: {same:.4f}; cells NCHW/NHWC per image: {ncells}\n-> {out_file}")

if __name__ == '__main__': main()
