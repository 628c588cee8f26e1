"""Self-supervised pretraining on real images: does `cellseg train --init` from `cellseg pretrain` beat random weights?

The issue names "self-supervised init from the unannotated images" as a candidate. LIVECell-5 ships 32 unannotated
LIVECell training images (8 cell lines; none of the 5 annotated images, which every fold scores). Each variant
pretrains once on them, 10 minutes alone on this CPU, then `bench/realdata.py` trains `ours` from that start
(`--ablation '{"init": ...}'`, row `ours[VARIANT]`) on the chosen folds; the controls are the defaults trained in
the same session from random weights (`--control`, row `ours[ctl56]` by default). Variants (`VARIANTS`):
- `ssl10`: `cellseg pretrain` with its defaults (`both`: contrastive + inpainting; batch 32, crop 256, lr 1e-3, the
  `strong` preset) on the images as they are; fine-tuned from its encoder and decoder (`init_decoder`), or
  (`ssl10-enc`) its encoder alone, as `cellseg train --init` now does;
- `ssl10inp`: inpainting alone, encoder and decoder;
- `ssl10inp-enc`: the same pretraining run, encoder only (`cellseg train --init`'s default since these runs; they were
  made before the option, from a copy of the run's `encoder/` whose `pretrain.json` named the encoder only: the same
  weights loaded);
- `ssl10x16`, `ssl10x16-enc`: `both`, on the images enlarged 1.6x first, about the scale `cellseg train` shows
  LIVECell cells at (median cell 30 px; the folds' models resize by 1.59-1.69x); encoder and decoder, encoder only.
Pretraining time is not counted in the training budget: one pretraining run serves every fold, as a pretrained
encoder would. Its 10 minutes are wall time, so its step count depends on the machine (121, 118 and 97 steps for the
runs of the results file; each run's log is in OUT). Each `bench/realdata.py` run is alone on the machine; the dev
budget is a fixed step count. A pair without a same-session control falls back to the next name in `CONTROLS` (the
15-minute pair: the defaults' `ours[control]` of the night before); each pair records its control's name and date.

    F='lc5-loio:BT474_C3 lc5-loio:BT474_B3 lc5-lolo:BT474'   # the three folds of the results file (ssl10 also lc5-lolo:Huh7)
    python bench/realdata_ssl.py --control-only --folds $F                 # the same-session control, ours[ctl56]
    python bench/realdata_ssl.py --variant ssl10 --folds $F                # pretrain once (10 wall-minutes), then train
    python bench/realdata_ssl.py --variant ssl10 --folds lc5-lolo:BT474 --budget 15min --seeds 4
    python bench/realdata_ssl.py --report          # pairs -> bench/results/realdata_ssl.json
"""
from __future__ import annotations
import argparse, json, subprocess, sys, time
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'bench'))
import realdata as R

OUT = ROOT/'bench/out/ssl'
RESULTS = ROOT/'bench/results/realdata_ssl.json'
PRETRAIN_MINUTES = 10
ZOOM = 1.6  # `ssl10x16`: the images enlarged to about the training scale of LIVECell cells
VARIANTS = {  # name: (pretraining folder under OUT, method, zoom, load its decoder too)
    'ssl10': ('p10', 'both', 1.0, True),
    'ssl10-enc': ('p10', 'both', 1.0, False),
    'ssl10inp': ('p10inp', 'inpainting', 1.0, True),
    'ssl10inp-enc': ('p10inp', 'inpainting', 1.0, False),
    'ssl10x16': ('p10x16', 'both', ZOOM, True),
    'ssl10x16-enc': ('p10x16', 'both', ZOOM, False),
}
CONTROLS = ('ours[ctl56]', 'ours[control]')  # a variant's run is paired with the first of these trained on its fold, budget and seed

def unlabelled(zoom:float=1.0) -> Path:
    "A folder of the unannotated LIVECell-5 images (links, or copies enlarged `zoom`x), none of the 5 annotated ones"
    import tifffile
    from skimage.transform import rescale
    d = R.shared()/'livecell-sample'
    annotated = {i['file_name'] for i in json.loads((d/'livecell_coco_val.json').read_text())['images']}
    out = OUT/('unlabelled' if zoom == 1 else f'unlabelled_x{round(zoom * 10)}'); out.mkdir(parents=True, exist_ok=True)
    for f in sorted((d/'images/livecell_train_val_images').glob('*.tif')):
        if f.name in annotated or (out/f.name).exists(): continue
        if zoom == 1: (out/f.name).symlink_to(f); continue
        a = rescale(tifffile.imread(f).astype(np.float32), zoom, order=1, preserve_range=True, anti_aliasing=False)
        tifffile.imwrite(out/f.name, np.clip(np.round(a), 0, 255).astype(np.uint8))
    return out

def pretrained(variant:str) -> Path:
    "The pretraining run of `variant` (made here once, 10 minutes)"
    folder, method, zoom, _ = VARIANTS[variant]
    run = OUT/folder
    if not (run/'encoder').exists():
        subprocess.run([sys.executable, '-m', 'cellseg_nb.cli', 'pretrain', '--images', str(unlabelled(zoom)), '--out', str(run),
                        '--method', method, '--max-minutes', str(PRETRAIN_MINUTES), '--seed', '0', '--no-progress'], check=True)
    return run

def train(folds, budget, seeds, name, ablation):
    cmd = [sys.executable, str(ROOT/'bench/realdata.py'), '--folds', *folds, '--budget', budget, '--methods', 'ours',
           '--seeds', *map(str, seeds), '--name', name]
    subprocess.run(cmd + (['--ablation', json.dumps(ablation)] if ablation else []), check=True)

def report():
    "Pair every variant run with its same-fold control; write `RESULTS` and print the table"
    runs = {(p, f, b, s, m): r for (p, f, m, b, s), r in R.done_runs().items()}   # the newest line of a run wins
    pairs = []
    for (p, f, b, s, m), r in sorted(runs.items()):
        v = m[5:-1] if m.startswith('ours[') else None
        if v not in VARIANTS: continue
        c = next((runs[(p, f, b, s, cn)] for cn in CONTROLS if (p, f, b, s, cn) in runs), None)
        if c is None: continue
        pairs.append(dict(variant=v, protocol=p, fold=f, budget=b, seed=s, control=c['method'],
                          **{f'{k}_{w}': x[k] for w, x in (('ssl', r), ('ctl', c)) for k in ('f1', 'ap', 'steps')},
                          n_pred_ssl=r.get('n_pred'), n_pred_ctl=c.get('n_pred'), n_true=r.get('n_true'), when_ssl=r.get('when'), when_ctl=c.get('when')))
    summary = {}
    for v in VARIANTS:
        for b in sorted({q['budget'] for q in pairs if q['variant'] == v}):
            d = np.array([(q['f1_ssl'] - q['f1_ctl'], q['ap_ssl'] - q['ap_ctl']) for q in pairs if q['variant'] == v and q['budget'] == b])
            summary[f'{v}/{b}'] = dict(n=len(d), folds=[f"{q['protocol']}:{q['fold']}" for q in pairs if q['variant'] == v and q['budget'] == b],
                                       df1=R.ms(d[:, 0]), dap=R.ms(d[:, 1]), f1_wins=int((d[:, 0] > 0.005).sum()),
                                       f1_losses=int((d[:, 0] < -0.005).sum()))
    for q in pairs:
        print(f"{q['variant']:13s} {q['budget']:5s} {q['protocol']}:{q['fold']:9s} s{q['seed']}  control {q['f1_ctl']:.3f} / {q['ap_ctl']:.3f} "
              f"({q['steps_ctl']})  init {q['f1_ssl']:.3f} / {q['ap_ssl']:.3f} ({q['steps_ssl']})  {q['f1_ssl'] - q['f1_ctl']:+.3f} / {q['ap_ssl'] - q['ap_ctl']:+.3f}")
    pm = lambda d: f"{d['mean']:+.3f} +- {d['sd']:.3f}" if d['n'] > 1 else f"{d['mean']:+.3f}"
    for k, s in summary.items(): print(f"{k:20s} n={s['n']}  dF1 {pm(s['df1'])}  dAP {pm(s['dap'])}  F1 wins {s['f1_wins']} losses {s['f1_losses']}")
    RESULTS.write_text(json.dumps(dict(when=time.strftime('%Y-%m-%d %H:%M'), pretrain_minutes=PRETRAIN_MINUTES, controls=CONTROLS,
                                       summary=summary, pairs=pairs), indent=1))

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--variant', choices=list(VARIANTS)); ap.add_argument('--control-only', action='store_true')
    ap.add_argument('--folds', nargs='+', default=[]); ap.add_argument('--budget', default='dev')
    ap.add_argument('--seeds', nargs='+', type=int, default=[0]); ap.add_argument('--control', default='ctl56')
    ap.add_argument('--report', action='store_true')
    a = ap.parse_args(argv)
    if a.report: return report()
    if a.control_only: return train(a.folds, a.budget, a.seeds, a.control, None)
    if not a.variant: ap.error('give --variant, --control-only or --report')
    train(a.folds, a.budget, a.seeds, a.variant, {'init': str(pretrained(a.variant)), 'init_decoder': VARIANTS[a.variant][3]})

if __name__ == '__main__': main()
