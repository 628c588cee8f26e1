"""Training-loop benchmark on this machine (CPU): data waiting and fp32 vs bf16 throughput.

1. Data waiting: the share of each training step spent blocked on the DataLoader (target <= 10% with 2
   workers), measured by `fit`'s own `data_wait` log field; the named peer is the same run with
   `num_workers=0` (data loaded in the training process).
2. Precision: optimiser steps per second with bf16 autocast vs fp32 (the peer), same model, data and seed.
   The faster one should be `cellseg_nb.train.CPU_AUTO_PRECISION`.

    python bench/bench_train.py [--model unet_test] [--crop 128] [--batch-size 8] [--steps 30]

Results are printed and written to bench/out/bench_train.json.
"""
import argparse, json, os, shutil, tempfile, time
from pathlib import Path
import numpy as np

def run(model, data, out, workers, mp, steps, crop, bs, augment='default'):
    from cellseg_nb.train import TrainConfig
    from cellseg_nb.learner import fit
    from cellseg_nb.loop import make_accelerator
    from cellseg_nb.data.sources import CocoSource
    from cellseg_nb.data.datasets import CellDataset, collate
    from cellseg_nb.augment import get_transforms
    from cellseg_nb.models.unet import create_model
    from cellseg_nb.losses import MultiTaskLoss
    from cellseg_nb.core import set_seed
    src = CocoSource(data['annotations']['train'], data['images']['train'], progress=False)
    ds = CellDataset(src, get_transforms(augment, crop_size=crop), crop)
    set_seed(0); m = create_model(model, class_names=list(src.class_names))
    cfg = TrainConfig(out=str(out), max_steps=steps, crop_size=crop, batch_size=bs, num_workers=workers, mixed_precision=mp,
                      samples_per_epoch=bs*steps, log_every=5, progress=False, checkpoint_every=0)
    t = time.perf_counter(); fit(m, MultiTaskLoss(), ds, cfg); total = time.perf_counter() - t
    recs = [json.loads(l) for l in (Path(out)/'log.jsonl').read_text().splitlines()]
    recs = [r for r in recs if 'loss' in r][1:]  # drop the first window (worker start-up, warm-up)
    return dict(workers=workers, mixed_precision=mp, data_wait=float(np.mean([r['data_wait'] for r in recs])),
                sec_per_step=float(np.median([r['sec_per_step'] for r in recs])), wall=total)

def interleaved_precision(model, crop, bs, rounds=6):
    "fp32 vs bf16-autocast train steps alternated in one process (cancels the drift of a shared machine's load)"
    import torch
    from cellseg_nb.models.unet import create_model
    from cellseg_nb.losses import MultiTaskLoss
    torch.manual_seed(0); m = create_model(model, class_names=['a', 'b', 'c']); crit = MultiTaskLoss()
    opt = torch.optim.AdamW(m.parameters(), 1e-3)
    S = crop; b = dict(image=torch.randn(bs, 1, S, S), fg=(torch.rand(bs, 1, S, S) > .5).float(), boundary=(torch.rand(bs, 1, S, S) > .9).float(),
                       dist=torch.rand(bs, 1, S, S), type=torch.randint(0, 4, (bs, S, S)), cls=torch.randint(0, 3, (bs,)))
    def step(bf16):
        t = time.perf_counter()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): out = m(b['image'])
        l, _ = crit({k: v.float() for k, v in out.items()}, b); opt.zero_grad(); l.backward(); opt.step()
        return time.perf_counter() - t
    step(False); step(True)  # warm-up
    ts = {False: [], True: []}
    for _ in range(rounds):
        for bf in (False, True): ts[bf].append(step(bf))
    return dict(fp32_sec=float(np.median(ts[False])), bf16_sec=float(np.median(ts[True])),
                bf16_vs_fp32_throughput=float(np.median(ts[False])/np.median(ts[True])))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default='unet_test'); p.add_argument('--crop', type=int, default=128)
    p.add_argument('--batch-size', type=int, default=8); p.add_argument('--steps', type=int, default=30)
    a = p.parse_args()
    import torch
    from cellseg_nb.data.synthset import make_synthetic_livecell
    tmp = Path(tempfile.mkdtemp())
    data = make_synthetic_livecell(tmp/'data', n_images=24, size=(256, 256), splits='train=1.0', progress=False)
    res = dict(machine=dict(cpus=os.cpu_count(), torch_threads=torch.get_num_threads(), load=os.getloadavg()),
               model=a.model, crop=a.crop, batch_size=a.batch_size, steps=a.steps)
    for name, w, mp in [('workers2_fp32', 2, 'no'), ('workers0_fp32', 0, 'no'), ('workers2_bf16', 2, 'bf16')]:
        r = run(a.model, data, tmp/name, w, mp, a.steps, a.crop, a.batch_size); res[name] = r
        print(f"{name:15s} data wait {r['data_wait']:6.1%}   {r['sec_per_step']*1000:7.0f} ms/step   ({r['wall']:.0f} s)", flush=True)
    w2, w0, bf = res['workers2_fp32'], res['workers0_fp32'], res['workers2_bf16']
    res['summary'] = dict(data_wait_2_workers=w2['data_wait'], data_wait_0_workers=w0['data_wait'],
                          speedup_2_workers_vs_0=w0['sec_per_step']/w2['sec_per_step'],
                          bf16_vs_fp32_throughput=w2['sec_per_step']/bf['sec_per_step'],
                          faster_cpu_precision='bf16' if bf['sec_per_step'] < w2['sec_per_step'] else 'no')
    for mdl in dict.fromkeys([a.model, 'unet_effv2_b0']):
        r = interleaved_precision(mdl, a.crop, a.batch_size); res[f'interleaved_{mdl}'] = r
        print(f"interleaved {mdl}: fp32 {r['fp32_sec']*1000:.0f} ms/step, bf16 {r['bf16_sec']*1000:.0f} ms/step "
              f"-> bf16 throughput {r['bf16_vs_fp32_throughput']:.2f}x fp32", flush=True)
    s = res['summary']
    print(f"\ndata wait with 2 workers: {s['data_wait_2_workers']:.1%} of step time (target <= 10%); "
          f"with 0 workers (peer): {s['data_wait_0_workers']:.1%}; 2 workers are {s['speedup_2_workers_vs_0']:.2f}x as fast per step")
    print(f"bf16 autocast throughput = {s['bf16_vs_fp32_throughput']:.2f}x fp32 (peer) -> faster on this CPU: {s['faster_cpu_precision']}")
    out = Path(__file__).resolve().parent/'out'; out.mkdir(exist_ok=True)
    (out/'bench_train.json').write_text(json.dumps(res, indent=1))
    print(f"written {out/'bench_train.json'}")
    shutil.rmtree(tmp, ignore_errors=True)

if __name__ == '__main__': main()
