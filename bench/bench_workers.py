"""Data-loading workers that live the whole run against workers started again every epoch: `cellseg train` steps.

`cellseg_nb.train.train` on the 5 annotated LIVECell images of `../shared` (the CPU defaults, as `cellseg train` runs
them: an epoch is 16 steps), `--steps` steps per run, three ways, in rotation so that load from other processes falls
on all of them:
- `per-epoch`: 2 workers started again at every epoch (`persistent_workers=False`, the loop before 2026-12-06: the peer);
- `persistent`: 2 workers kept for the whole run (the product);
- `none`: no workers, the samples made in the training process.
Per run: the median `sec_per_step` of its logged windows after the first (warm-up), its training time, and its logged
losses, which must be the same for all three (each sample is a pure function of its index and seed).

Speeds are reported as ratios per-epoch time / persistent time measured in the same run (> 1: persistent is faster).

    CELLSEG_SHARED_DATA=../shared/data python bench/bench_workers.py [--steps 160] [--rounds 2]

Results are printed and written to bench/results/bench_workers.json (`--smoke`: a few steps of the tiny test model,
written to bench/out/).
"""
from __future__ import annotations
import argparse, functools, json, os, platform, statistics, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'bench'))
from bench_layout import lc5_data   # the 5 annotated images as training data, no validation images

WAYS = {'per-epoch': dict(num_workers=2), 'persistent': dict(num_workers=2), 'none': dict(num_workers=0)}

def train_run(work:Path, data:dict, steps:int, way:str, smoke:bool) -> dict:
    "One `train` run of `steps` steps loading its data `way`: seconds per step, training time and the logged losses"
    import cellseg_nb.learner as L
    from cellseg_nb.train import train
    keep = L.DataLoader
    if way == 'per-epoch': L.DataLoader = functools.partial(keep, persistent_workers=False)   # the peer: overrides the loop's True
    out = work/f"run_{way}_{time.time_ns()}"
    extra = dict(model='unet_test', crop_size=64, batch_size=2) if smoke else {}
    try:
        t = time.perf_counter()
        s = train(out=str(out), seed=0, progress=False, max_steps=steps, **WAYS[way], **data, **extra)
        wall = time.perf_counter() - t
    finally: L.DataLoader = keep
    log = [json.loads(l) for l in (out/'log.jsonl').read_text().splitlines() if l.strip()]
    per = [r['sec_per_step'] for r in log if 'sec_per_step' in r]
    return dict(way=way, steps=s['steps'], sec_per_step=statistics.median(per[1:] or per),   # the first window warms up
                train_s=s['minutes'] * 60, wall_s=wall, losses=[r['loss'] for r in log if 'loss' in r])

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=160, help='training steps per run (an epoch is 16)')
    ap.add_argument('--rounds', type=int, default=2, help='rotations of the three ways')
    ap.add_argument('--smoke', action='store_true', help='tiny model, few steps: checks that the script runs')
    a = ap.parse_args(argv)
    import torch
    steps = 40 if a.smoke else a.steps
    out_file = ROOT/('bench/out/bench_workers.json' if a.smoke else 'bench/results/bench_workers.json')
    ways = list(WAYS)
    order = [w for r in range(a.rounds) for w in (ways if r % 2 == 0 else ways[::-1])]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp); data = lc5_data(work/'data'); runs = []
        for w in order:
            runs.append(train_run(work, data, steps, w, a.smoke))
            print(f"{w}: {runs[-1]['sec_per_step']:.3f} s/step, {runs[-1]['train_s']:.1f} s", flush=True)
    med = lambda k, w: statistics.median(r[k] for r in runs if r['way'] == w)
    same = all(r['losses'] == runs[0]['losses'] for r in runs)
    res = dict(machine=dict(cpus=os.cpu_count(), torch=torch.__version__, torch_threads=torch.get_num_threads(), processor=platform.processor()),
               when=time.strftime('%Y-%m-%d %H:%M'), steps=steps, rounds=a.rounds, smoke=a.smoke, order=order,
               train=[{k: v for k, v in r.items() if k != 'losses'} for r in runs], same_losses=same,
               summary={**{f'sec_per_step_{w}': med('sec_per_step', w) for w in ways},
                        'step_ratio_per_epoch_vs_persistent': med('sec_per_step', 'per-epoch') / med('sec_per_step', 'persistent'),
                        'time_ratio_per_epoch_vs_persistent': med('train_s', 'per-epoch') / med('train_s', 'persistent'),
                        'step_ratio_none_vs_persistent': med('sec_per_step', 'none') / med('sec_per_step', 'persistent')})
    out_file.parent.mkdir(parents=True, exist_ok=True); out_file.write_text(json.dumps(res, indent=1))
    print(json.dumps(res['summary'], indent=1), f"\nsame losses in every run: {same}\n-> {out_file}")

if __name__ == '__main__': main()
