"""The full `cellseg demo` (CPU preset by default) for several seeds: F1@0.5 on the held-out synthetic images
against the 0.85 target, training steps, wall time and CPU time, with the machine load in view.

Speed is reported as a ratio against a named peer measured in the same run: `bare step` = one forward +
backward + AdamW step of the same model on a random batch of the same shape (no data loading, no
validation). `demo sec/step / bare sec/step` is what the whole training loop costs per step over the
model alone (data, loss, logging, validation and checkpoints amortised).

    python bench/bench_demo.py                      # seeds 0 and 1, CPU preset
    python bench/bench_demo.py --seeds 1 --steps 300
    python bench/bench_demo.py --real               # also score each demo model on the 5 real LIVECell images of ../shared

Writes bench/out/bench_demo.json (and the demo folders under bench/out/demo/); exits 1 if a seed misses the target.

Measured (2-core AMD EPYC, torch 2.14 CPU, bf16 autocast, CPU preset = unet_test, 1600 steps, crop 128, batch 8):
  seed 0: F1@0.5 0.947, mSA 0.80; 1600 steps in 5.8 min at load 2.5-3.5 while sharing the CPU with another demo
          (`cellseg demo` alone at load 2-4: 2 min 45 s training, 2 min 52 s whole demo, F1@0.5 0.946)
  seed 1 (--threads 1): F1@0.5 0.912, mSA 0.72; 1600 steps in 3.8 min, 0.14 s/step = 1.37x the bare step
  20 steps (what the old time-limited preset got on a loaded machine) scored 0.13 here (0.004 in the issue);
  400 steps 0.91 / 0.90 (seeds 0 / 1).
"""
import argparse, json, os, resource, shutil, sys, time
from pathlib import Path

def cpu_seconds() -> float:
    "CPU time (user + system) of this process and its finished children (DataLoader workers)"
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

def bare_step_seconds(preset:dict, steps:int=8, threads:int|None=None) -> float:
    "Median seconds of a forward + backward + AdamW step of the preset's model on a random batch (the peer)"
    import numpy as np, torch
    from cellseg_nb.models.unet import create_model
    from cellseg_nb.loop import resolve_mixed_precision
    from cellseg_nb.demo import torch_threads
    with torch_threads(threads):
        m = create_model(preset['model'], num_classes=3); opt = torch.optim.AdamW(m.parameters(), 1e-3)
        x = torch.randn(preset['batch_size'], 1, preset['crop'], preset['crop'])
        bf16 = resolve_mixed_precision(preset.get('mixed_precision', 'auto'), 'cpu') == 'bf16'
        ts = []
        for _ in range(steps + 2):
            t = time.perf_counter()
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
                loss = sum(v.float().square().mean() for v in m(x).values())
            loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); ts.append(time.perf_counter() - t)
    return float(np.median(ts[2:]))

def real_scores(what, progress=False) -> dict|None:
    "F1@0.5 / mSA / AP of a model folder (or an image -> labels function) on the annotated LIVECell images of ../shared; None without them"
    from cellseg_nb.core import shared_data
    from cellseg_nb.evaluate import evaluate
    lc = shared_data('livecell-sample')
    if lc is None: return None
    r = evaluate(what, lc/'livecell_coco_val.json', lc/'images', figures=False, progress=progress)
    p = r['summary']['pooled']
    return dict(f1=p['f1@0.5'], msa=p['msa'], ap=r['coco']['AP'], n_images=r['n_images'])

def main(argv=None) -> int:
    from cellseg_nb.demo import run_demo, demo_preset, DEMO_TARGET_F1, cpu_cores
    from cellseg_nb.evaluate import classical_baseline
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    ap.add_argument('--preset', default='cpu'); ap.add_argument('--steps', type=int); ap.add_argument('--threads', type=int)
    ap.add_argument('--minutes', type=float, help='safety cap (default: the preset\'s)')
    ap.add_argument('--out', default=str(Path(__file__).parent/'out'))
    ap.add_argument('--keep', action='store_true', help='keep an existing run (resume / re-evaluate) instead of training afresh')
    ap.add_argument('--real', action='store_true', help='also score each demo model and the classical baseline on the real LIVECell images of ../shared')
    a = ap.parse_args(argv)
    p = demo_preset(a.preset); out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    res = dict(machine=dict(cpus=os.cpu_count(), cores_available=cpu_cores(), load_start=os.getloadavg()), preset=p, runs={})
    for seed in a.seeds:
        d = out/'demo'/f'{a.preset}_seed{seed}'
        if not a.keep: shutil.rmtree(d/'run', ignore_errors=True)
        l0, c0, t0 = os.getloadavg(), cpu_seconds(), time.time()
        r = run_demo(d, a.minutes, None, a.preset, seed, progress=True, show=False, steps=a.steps, threads=a.threads)
        wall, cpu = time.time() - t0, cpu_seconds() - c0
        bare = bare_step_seconds(p, threads=a.threads)
        spp = r['train_minutes']*60/max(r['steps'], 1)
        res['runs'][seed] = dict(f1=r['metrics']['F1@0.5'], msa=r['metrics']['mSA'], dice=r['metrics']['pixel Dice'],
                                 type_acc=r['metrics']['cell-type accuracy'], steps=r['steps'], stop=r['train']['stop_reason'],
                                 best_val_f1=r['train']['best_score'], best_step=r['train']['best_step'],
                                 tuned_val_f1=r['train'].get('tuned_score'), train_min=r['train_minutes'], demo_min=wall/60,
                                 cpu_min=cpu/60, sec_per_step=spp, bare_sec_per_step=bare, step_vs_bare=spp/bare,
                                 threads=r['threads'], load_before=l0, load_after=os.getloadavg(), out=str(d))
        x = res['runs'][seed]
        if a.real and (rs := real_scores(d/'run'/'best')) is not None:
            x['real'] = rs; print(f"seed {seed}: real LIVECell images F1@0.5 {rs['f1']:.3f}, mSA {rs['msa']:.3f}, AP {rs['ap']:.3f}", flush=True)
        print(f"seed {seed}: F1@0.5 {x['f1']:.3f} (target {DEMO_TARGET_F1}: {'ok' if x['f1'] >= DEMO_TARGET_F1 else 'MISSED'}), "
              f"mSA {x['msa']:.3f}, Dice {x['dice']:.3f}; {x['steps']} steps ({x['stop']}) in {x['train_min']:.1f} min, "
              f"demo {x['demo_min']:.1f} min, {x['cpu_min']:.1f} CPU-min; {spp:.2f} s/step = {x['step_vs_bare']:.2f}x the bare step "
              f"({bare:.2f} s); load {l0[0]:.1f} -> {x['load_after'][0]:.1f}", flush=True)
    if a.real and (rs := real_scores(classical_baseline)) is not None:
        res['classical_real'] = rs; print(f"classical baseline, real LIVECell images: F1@0.5 {rs['f1']:.3f}, mSA {rs['msa']:.3f}, AP {rs['ap']:.3f}")
    f1s = [x['f1'] for x in res['runs'].values()]
    res['summary'] = dict(min_f1=min(f1s), mean_f1=sum(f1s)/len(f1s), target=DEMO_TARGET_F1, all_reached=min(f1s) >= DEMO_TARGET_F1)
    (out/'bench_demo.json').write_text(json.dumps(res, indent=1, default=str))
    print(f"min F1@0.5 over seeds {a.seeds}: {min(f1s):.3f} (target {DEMO_TARGET_F1}) -> {out/'bench_demo.json'}")
    return 0 if res['summary']['all_reached'] else 1

if __name__ == '__main__': sys.exit(main())
