"""How long each tutorial takes under IN_TEST (the CI path: `nbdev-test`) on this CPU.

Peer, measured in the same run: `nbdev-test nbs/00_core.ipynb`, the lightest notebook (a kernel start,
numpy/torch imports and a few tests), so the ratio says how many "empty notebooks" a tutorial costs and is
comparable across machines and loads. Also prints the Colab T4 estimate of each tutorial's full run from the
budgets set in the notebooks (see COLAB_T4 for the assumptions).

Usage: python bench/bench_tutorials.py [--only PATTERN] [--repeat N]
Writes bench/out/bench_tutorials.json.
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT/'nbs'/'00_core.ipynb'

# Full-run (GPU) wall time on a Colab T4, minutes: (budget set in the notebook, estimate of the rest, assumptions)
COLAB_T4 = {
    '01_quickstart_livecell': (60, 30, 'train max_minutes=60; download+unzip 1.3 GB ~5 min; COCO->label cache of '
                               '3,253 train + 570 val images ~8 min (2 CPU cores); test-set eval of 1,564 images ~15 min'),
    '02_your_own_images': (20, 5, 'train max_minutes=20 on ~45 images; predict + export of the held-out images <1 min; setup ~3 min'),
    '03_self_supervised_pretraining': (30 + 2*15, 30, 'pretrain 30 min + two fine-tunes of 15 min; download + cache ~13 min; '
                                       'two test-set evaluations ~15 min'),
    '04_multi_gpu_tpu': (30 + 10, 15, 'notebook_launcher run 30 min + accelerate launch run 10 min (1 process on a T4); '
                         'download + cache of train/val ~13 min'),
}


def nbdev_test(nb:Path) -> tuple[float, bool, str]:
    "Wall seconds of `nbdev-test nb` with IN_TEST=1, success, and the tail of its output"
    t0 = time.perf_counter()
    r = subprocess.run(['nbdev-test', str(nb)], cwd=ROOT, capture_output=True, text=True, env={**os.environ, 'IN_TEST': '1'})
    return time.perf_counter() - t0, r.returncode == 0, (r.stdout + r.stderr)[-1500:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--only', default='', help='only tutorials whose file name contains this')
    ap.add_argument('--repeat', type=int, default=1, help='runs per notebook (the minimum is reported)')
    a = ap.parse_args(argv)
    nbs = sorted(p for p in (ROOT/'nbs'/'tutorials').glob('*.ipynb') if a.only in p.name)
    res = {'peer': {'notebook': str(PEER.relative_to(ROOT)), 'seconds': None}, 'tutorials': []}
    peer = min(nbdev_test(PEER)[0] for _ in range(a.repeat))
    res['peer']['seconds'] = round(peer, 1)
    print(f'peer nbdev-test {PEER.name}: {peer:.1f} s', flush=True)
    for nb in nbs:
        runs = [nbdev_test(nb) for _ in range(a.repeat)]
        secs, ok = min(r[0] for r in runs), all(r[1] for r in runs)
        budget, rest, why = COLAB_T4.get(nb.stem, (None, None, ''))
        row = dict(tutorial=nb.name, seconds=round(secs, 1), ratio_to_peer=round(secs/peer, 2), ok=ok,
                   colab_t4_minutes=(budget + rest) if budget is not None else None, colab_assumptions=why)
        if not ok: row['error'] = runs[-1][2]
        res['tutorials'].append(row)
        print(json.dumps(row), flush=True)
    try: load = os.getloadavg()[0]
    except OSError: load = None
    res.update(cpu_count=os.cpu_count(), load_avg_1min=load)
    out = ROOT/'bench'/'out'; out.mkdir(parents=True, exist_ok=True)
    (out/'bench_tutorials.json').write_text(json.dumps(res, indent=1))
    print(f"\n{'tutorial':<38} {'IN_TEST s':>10} {'x peer':>7} {'Colab T4 min':>13}")
    for r in res['tutorials']:
        print(f"{r['tutorial']:<38} {r['seconds']:>10.1f} {r['ratio_to_peer']:>7.2f} {r['colab_t4_minutes'] or '-':>13}  {'ok' if r['ok'] else 'FAILED'}")
    print(f"(peer: nbdev-test {PEER.name} = {peer:.1f} s; {os.cpu_count()} CPUs, load {load})")
    return 0 if all(r['ok'] for r in res['tutorials']) else 1


if __name__ == '__main__': sys.exit(main())
