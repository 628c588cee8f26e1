"""Low-label experiment: does self-supervised pretraining help when only two images are annotated?

Protocol (CPU scale, ~25 min on 2 shared cores):
1. pretrain (`cellseg_nb.pretrain.pretrain`, method `both` by default) on unlabelled images: the 32
   unannotated LIVECell images of `shared_data('livecell-sample')` plus synthetic phase-contrast images;
2. fine-tune with the supervised loss (`MultiTaskLoss`, the training loop `fit`) on TWO annotated
   LIVECell images, from random initialisation ("random") and from the pretrained encoder + decoder
   ("pretrained"), with the same steps, lr, crops and augmentation, for each of `--seeds` seeds;
3. score F1@0.5 and mSA (post-processing with default thresholds, object matching) on the THREE other
   annotated images, used by neither pretraining nor fine-tuning, after every fine-tuning epoch
   (learning curves), and report mean ± sd over seeds of the final model.

Results: bench/out/ssl_experiment.json and bench/out/ssl_experiment.png (shown by nbs/14_pretrain.ipynb).
Run:  python bench/ssl_experiment.py            (add --quick for a 2-minute smoke run)
"""
from __future__ import annotations
import argparse, json, time, tempfile, io, contextlib
from pathlib import Path
import numpy as np
import torch

from cellseg_nb.core import shared_data, set_seed
from cellseg_nb.data.sources import CocoSource, SubsetSource
from cellseg_nb.data.datasets import CellDataset, collate
from cellseg_nb.augment import get_transforms
from cellseg_nb.models.unet import create_model
from cellseg_nb.losses import MultiTaskLoss
from cellseg_nb.learner import fit
from cellseg_nb.loop import read_log
from cellseg_nb.train import TrainConfig, make_val_fn
from cellseg_nb.models.unet import load_pretrained
from cellseg_nb.pretrain import pretrain, encode_crops, cluster_score

TRAIN_NAMES = ('BT474_Phase_B3_2_02d12h00m_3', 'MCF7_Phase_F4_2_00d00h00m_4')  # the two labelled images
OUT = Path(__file__).resolve().parent / 'out'


def write_synthetic(folder: Path, n: int, shape=(256, 256), seed=0):
    "Synthetic unlabelled phase-contrast images (the project's generator) as TIFFs"
    import tifffile
    from cellseg_nb.data.synth import synth_image, SYNTH_TYPES
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = synth_image(seed * 1000 + i, SYNTH_TYPES[i % len(SYNTH_TYPES)], shape)[0]
        tifffile.imwrite(folder / f'synth_{SYNTH_TYPES[i % len(SYNTH_TYPES)]}_{i:03d}.tif', np.asarray(img))


def finetune(arm, seed, train_src, scorer, args, run_dir, init=None):
    set_seed(seed)
    model = create_model(args.model)
    if init is not None: load_pretrained(model, init)
    ds = CellDataset(train_src, get_transforms('default', crop_size=args.crop), args.crop)
    cfg = TrainConfig(out=str(run_dir), model=args.model, epochs=args.ft_epochs, samples_per_epoch=args.ft_steps_per_epoch * args.batch_size,
                      batch_size=args.batch_size, crop_size=args.crop, lr=args.lr, num_workers=0, seed=seed,
                      progress=False, live_plot=False, log_every=args.ft_steps_per_epoch)
    t0 = time.perf_counter()
    s0 = scorer(model)  # step 0 of the curve
    summ = fit(model, MultiTaskLoss(), ds, cfg, val_fn=scorer, collate_fn=collate)
    recs = [r for r in read_log(run_dir) if 'val_f1' in r]
    final = {'f1@0.5': recs[-1]['val_f1'], 'msa': recs[-1]['val_msa']}   # the last model, not the best (no selection on test images)
    print(f"  {arm:10s} seed {seed}: F1@0.5 {final['f1@0.5']:.3f}  mSA {final['msa']:.3f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return dict(seed=seed, final=final, curve_steps=[0] + [r['step'] for r in recs],
                curve_f1=[s0['f1']] + [r['val_f1'] for r in recs], curve_msa=[s0['msa']] + [r['val_msa'] for r in recs],
                steps=summ['steps'], minutes=summ['minutes'])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', default='unet_effv2_b0'); ap.add_argument('--crop', type=int, default=128)
    ap.add_argument('--method', default='both'); ap.add_argument('--pretrain-minutes', type=float, default=7.0)
    ap.add_argument('--pretrain-steps', type=int, help='a step budget for pretraining instead of --pretrain-minutes (reproducible on a busy machine)')
    ap.add_argument('--pretrain-batch', type=int, default=16); ap.add_argument('--synthetic', type=int, default=32)
    ap.add_argument('--seeds', type=int, default=3); ap.add_argument('--ft-epochs', type=int, default=5)
    ap.add_argument('--ft-steps-per-epoch', type=int, default=8); ap.add_argument('--batch-size', type=int, default=8)
    ap.add_argument('--lr', type=float, default=2e-3); ap.add_argument('--quick', action='store_true', help='smoke run (~2 min)')
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args(argv)
    if args.quick:
        args.model, args.crop, args.pretrain_minutes, args.synthetic, args.seeds, args.ft_epochs, args.ft_steps_per_epoch = 'unet_test', 64, 0.3, 4, 2, 2, 2
    torch.set_num_threads(args.threads)
    root = shared_data('livecell-sample')
    if root is None: print('skipped: shared_data("livecell-sample") not found (needs the developers\' sample data)'); return 0
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix='ssl_exp_'))
    with contextlib.redirect_stdout(io.StringIO()):
        src = CocoSource(root / 'livecell_coco_val.json', progress=False)
    names = [src.name(i) for i in range(len(src))]
    tr = [names.index(n) for n in TRAIN_NAMES]
    train_src, test_src = SubsetSource(src, tr), SubsetSource(src, [i for i in range(len(src)) if i not in tr])
    print(f"labelled (fine-tuning): {[train_src.name(i) for i in range(len(train_src))]}\n"
          f"held out (scoring):     {[test_src.name(i) for i in range(len(test_src))]}")
    annotated = {f'{n}.tif' for n in names}
    unl = work / 'unlabelled'; unl.mkdir()
    for p in sorted((root / 'images' / 'livecell_train_val_images').glob('*.tif')):
        if p.name not in annotated: (unl / p.name).symlink_to(p)   # the 32 unannotated images only
    write_synthetic(work / 'synthetic', args.synthetic)
    n_real = len(list(unl.glob('*.tif')))
    print(f"unlabelled: {n_real} LIVECell + {args.synthetic} synthetic images")

    t0 = time.perf_counter(); set_seed(0)
    ps = pretrain([unl, work / 'synthetic'], work / 'pretrain', method=args.method, model=args.model, crop_size=args.crop,
                  batch_size=args.pretrain_batch, samples_per_epoch=64,
                  **(dict(max_steps=args.pretrain_steps) if args.pretrain_steps else dict(max_minutes=args.pretrain_minutes)), lr=2e-3,
                  num_workers=0, log_every=5, progress=False, live_plot=False)
    pt_min = (time.perf_counter() - t0) / 60
    pre_log = [dict(step=r['step'], loss=r['loss'], **{k: r[k] for k in ('ntxent', 'inpaint') if k in r}) for r in read_log(work / 'pretrain') if 'loss' in r]
    print(f"pretrained: {ps['steps']} steps of {args.pretrain_batch} image pairs in {pt_min:.1f} min")
    live = sorted(unl.glob('*.tif'))
    emb = {}
    for arm, m in (('random', create_model(args.model)), ('pretrained', create_model(args.model))):
        if arm == 'pretrained': load_pretrained(m, work / 'pretrain')
        f, n = encode_crops(m, live, crops_per_image=4, crop_size=args.crop)
        emb[arm] = cluster_score(f, n)
    print(f"1-NN cell-line accuracy of encoder features (unlabelled images, chance ~{1/8:.2f}): {emb}")

    scorer = make_val_fn(test_src)   # F1@0.5 ('f1') and mSA pooled over the held-out images, default post-processing
    runs = {'random': [], 'pretrained': []}
    for seed in range(args.seeds):
        for arm in runs:
            runs[arm].append(finetune(arm, seed, train_src, scorer, args, work / f'ft_{arm}_{seed}',
                                      init=work / 'pretrain' if arm == 'pretrained' else None))
    total = (time.perf_counter() - t0) / 60
    res = dict(args=vars(args), train_images=list(TRAIN_NAMES), test_images=[test_src.name(i) for i in range(len(test_src))],
               unlabelled=dict(livecell=n_real, synthetic=args.synthetic), pretrain=dict(steps=ps['steps'], minutes=pt_min, log=pre_log),
               feature_1nn_cell_line=emb, runs=runs, minutes_total=total, torch_threads=args.threads)
    print('\nheld-out scores of the final fine-tuned model, mean ± sd over seeds:')
    for arm, rs in runs.items():
        print(f"  {arm:10s} " + '  '.join(f"{m} {np.mean([r['final'][m] for r in rs]):.3f} ± {np.std([r['final'][m] for r in rs]):.3f}" for m in ('f1@0.5', 'msa')))
    d = [p['final']['f1@0.5'] - r['final']['f1@0.5'] for p, r in zip(runs['pretrained'], runs['random'])]
    print(f"  paired difference F1@0.5 (pretrained - random): {np.mean(d):+.3f} ± {np.std(d):.3f}  [{', '.join(f'{x:+.3f}' for x in d)}]")
    print(f"total {total:.1f} min")
    name = 'ssl_experiment_quick' if args.quick else 'ssl_experiment'
    (OUT / f'{name}.json').write_text(json.dumps(res, indent=1))
    try:
        import matplotlib; matplotlib.use('Agg')
        from cellseg_nb.pretrain import plot_ssl_experiment
        plot_ssl_experiment(res).savefig(OUT / f'{name}.png', dpi=110)
    except Exception as e: print('figure not written:', e)
    print(f"wrote {OUT / (name + '.json')}")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
