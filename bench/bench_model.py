"""Train-step time and peak memory: our MultiHeadUNet (all heads + MultiTaskLoss) vs smp.Unet (one head, Dice+BCE).

One train step = forward + backward + AdamW step, batch 8, 256x256, 1 channel, CPU, fp32, both models on the
same timm encoder (tf_efficientnetv2_b0). Each measurement runs in its own subprocess (so its peak RSS is its own),
and the models alternate in every round (ours, smp, smp, ours, ...) so that load from other processes on the
machine falls on both. Reported: median step time of each model over all rounds, the ratio ours / smp
(target <= 1.0) and peak resident memory.

    python bench/bench_model.py                    # defaults: 3 rounds x (2 warm-up + 5 timed steps), 1 thread
    python bench/bench_model.py --models ours,smp,ours_smp_layout --rounds 4 --threads 0

One torch thread by default: on a shared machine, multi-threaded steps spend most of their time in OpenMP
spin-waits and the timings swing 3x between identical runs; `--threads 0` keeps torch's default.

Results are printed and written to bench/out/bench_model.json.
"""
from __future__ import annotations
import argparse, json, os, resource, statistics, subprocess, sys, time
from pathlib import Path

MODELS = {
    'ours': 'MultiHeadUNet unet_effv2_b0 (fg, boundary, dist, type[9], cls[8]) + MultiTaskLoss',
    'smp': "smp.Unet('tu-tf_efficientnetv2_b0', classes=1) + Dice+BCE",
    'ours_smp_layout': 'MultiHeadUNet b0 with smp decoder layout (256..16, 2 convs at full res, 3x3 heads) + MultiTaskLoss',
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(name: str, steps: int, warmup: int, batch: int, size: int, threads: int) -> dict:
    "Build `name`, run `warmup + steps` train steps, return step times and memory"
    import torch, torch.nn.functional as F
    if threads: torch.set_num_threads(threads)
    from cellseg_nb.losses import MultiTaskLoss, DiceBCELoss
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, size, size, generator=g)
    fg = (torch.rand(batch, 1, size // 16, size // 16, generator=g) > 0.6).float()  # 16-px blocks of "cells"
    fg = F.interpolate(fg, size=(size, size), mode='nearest')
    bnd = fg * (F.max_pool2d(fg, 3, 1, 1) + F.max_pool2d(-fg, 3, 1, 1) > 0).float()
    tgt = dict(fg=fg, boundary=bnd, dist=fg * torch.rand(batch, 1, size, size, generator=g),
               type=(fg[:, 0] * torch.randint(1, 9, (batch, 1, 1), generator=g)).long(),
               cls=torch.randint(0, 8, (batch,), generator=g))
    if name == 'smp':
        import segmentation_models_pytorch as smp
        model = smp.Unet('tu-tf_efficientnetv2_b0', encoder_weights=None, in_channels=1, classes=1)
        crit = DiceBCELoss()
        loss_fn = lambda: crit(model(x), fg)
    else:
        from cellseg_nb.models.unet import create_model
        kw = dict(decoder_channels=[256, 128, 64, 32, 16], final_convs=2, head_kernel=3) if name == 'ours_smp_layout' else {}
        model = create_model('unet_effv2_b0', **kw)
        crit = MultiTaskLoss()
        loss_fn = lambda: crit(model(x), tgt)[0]
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rss_built = _rss_mb()
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return dict(name=name, times=times[warmup:], warmup_times=times[:warmup], rss_built_mb=rss_built,
                peak_rss_mb=_rss_mb(), params=sum(p.numel() for p in model.parameters()),
                threads=torch.get_num_threads(), loss=float(loss))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default='ours,smp', help=f'comma-separated, from {list(MODELS)}; the last named peer is smp')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--steps', type=int, default=5, help='timed steps per round')
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--threads', type=int, default=1, help='torch threads (0: torch default)')
    ap.add_argument('--out', default=str(Path(__file__).parent / 'out' / 'bench_model.json'))
    ap.add_argument('--worker', help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print('RESULT ' + json.dumps(worker(a.worker, a.steps, a.warmup, a.batch, a.size, a.threads)), flush=True)
        return 0
    names = a.models.split(',')
    bad = [n for n in names if n not in MODELS]
    if bad: ap.error(f'unknown models {bad}; expected names from {list(MODELS)}')
    if 'smp' not in names: ap.error('the peer "smp" must be among --models')
    runs = {n: [] for n in names}
    print(f'{a.rounds} rounds x ({a.warmup} warm-up + {a.steps} timed) train steps, batch {a.batch}, {a.size}x{a.size}, CPU fp32; '
          f'load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs', flush=True)
    for r in range(a.rounds):
        order = names if r % 2 == 0 else names[::-1]  # alternate who goes first
        for n in order:
            cmd = [sys.executable, __file__, '--worker', n, '--steps', str(a.steps), '--warmup', str(a.warmup),
                   '--batch', str(a.batch), '--size', str(a.size), '--threads', str(a.threads)]
            p = subprocess.run(cmd, capture_output=True, text=True)
            line = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
            if p.returncode or not line:
                print(f'worker {n} failed (exit {p.returncode}):\n{p.stderr[-2000:]}', file=sys.stderr); return 1
            res = json.loads(line[0][7:]); runs[n].append(res)
            print(f'  round {r}: {n:16s} median {statistics.median(res["times"]):.3f} s/step  peak RSS {res["peak_rss_mb"]:.0f} MB', flush=True)
    summary = {}
    for n, rs in runs.items():
        ts = [t for rr in rs for t in rr['times']]
        summary[n] = dict(desc=MODELS[n], params=rs[0]['params'], median_s=statistics.median(ts), min_s=min(ts),
                          round_medians_s=[statistics.median(rr['times']) for rr in rs],
                          peak_rss_mb=max(rr['peak_rss_mb'] for rr in rs),
                          train_rss_mb=max(rr['peak_rss_mb'] - rr['rss_built_mb'] for rr in rs))
    peer = summary['smp']
    print(f'\n{"model":16s} {"params":>9s} {"median s/step":>14s} {"ratio vs smp":>13s} {"min-ratio":>10s} {"peak RSS MB":>12s} {"train RSS MB":>13s}')
    for n, s in summary.items():
        s['ratio_vs_smp'] = s['median_s'] / peer['median_s']
        s['min_ratio_vs_smp'] = s['min_s'] / peer['min_s']
        # per-round ratios: each pair of runs shares the same machine load
        s['round_ratios'] = [o / p for o, p in zip(s['round_medians_s'], peer['round_medians_s'])]
        print(f'{n:16s} {s["params"]/1e6:8.2f}M {s["median_s"]:14.3f} {s["ratio_vs_smp"]:13.2f} {s["min_ratio_vs_smp"]:10.2f} '
              f'{s["peak_rss_mb"]:12.0f} {s["train_rss_mb"]:13.0f}')
    print('(target: ours ratio <= 1.0; per-round ratios ' +
          ', '.join(f'{n}: ' + ' '.join(f'{x:.2f}' for x in s['round_ratios']) for n, s in summary.items() if n != 'smp') + ')')
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(args=vars(a), summary=summary, runs=runs), indent=1))
    print(f'written {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
