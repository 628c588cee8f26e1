"""Peer (b) of the real-data benchmark: Cellpose 3.1.1.3 trained from scratch, as its docs show.

Runs inside its own virtual environment (Cellpose 3 pins numpy < 2.1), created by `bench/realdata.py` on first
use; imports nothing from cellseg_nb. `CellposeModel(pretrained_model=False, model_type=None, diam_mean=30)`,
`train.train_seg` with its own defaults (flows precomputed from the label images), on the GPU where there is one, prediction with
`diameter=` the training masks' `diam_labels`; nothing is downloaded.

    python peer_cellpose.py IN.npz OUT.npz (--epochs N | --minutes M) --seed S
IN.npz holds train_0.., mask_0.., test_0..; OUT.npz gets labels_i, scores_i and an info json string.
A time budget is met by timing calibration runs first (not counted): a 3-epoch warm-up (one-time costs of the
process), then 10 and 40 epochs, whose difference gives the steady time per epoch and the rest the start-up (flows),
so it trains for (budget - start-up) / (s per epoch) epochs; `budget_used` in the info says how well that worked.
Where an epoch is long (many or large images: Usiigaci's 35 take ~26 s), 10 and 40 become N/4 and N epochs with N
sized to about a fifth of the budget (at least 8), so calibration no longer costs more than the training itself.
(Until 2026-12-03 one 10-epoch run, start-up included, set the rate; it trained 624-732 s of 900.)
"""
import argparse, json, logging, tempfile, time
import numpy as np, torch

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('inp'); ap.add_argument('out')
    ap.add_argument('--epochs', type=int); ap.add_argument('--minutes', type=float); ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    from cellpose import models, train
    logging.getLogger('cellpose').setLevel(logging.WARNING)
    d = np.load(a.inp)
    imgs = [d[k].astype(np.float32) for k in sorted((k for k in d if k.startswith('train_')), key=lambda k: int(k.split('_')[1]))]
    masks = [d[k].astype(np.int32) for k in sorted((k for k in d if k.startswith('mask_')), key=lambda k: int(k.split('_')[1]))]
    tests = [d[k] for k in sorted((k for k in d if k.startswith('test_')), key=lambda k: int(k.split('_')[1]))]

    def fit(n_epochs):
        torch.manual_seed(a.seed); np.random.seed(a.seed)
        model = models.CellposeModel(gpu=torch.cuda.is_available(), pretrained_model=False, model_type=None, diam_mean=30.)
        with tempfile.TemporaryDirectory() as td:
            t0 = time.perf_counter()
            train.train_seg(model.net, train_data=imgs, train_labels=masks, channels=[0, 0], n_epochs=n_epochs,
                            save_path=td, model_name='peer', min_train_masks=1)
            return model, time.perf_counter() - t0

    epochs, calib, startup = a.epochs, None, None
    if epochs is None:
        _, t3 = fit(3)
        n2 = int(np.clip(a.minutes * 60 * 0.2 / (t3 / 3), 8, 40)); n1 = max(2, n2 // 4)  # calibration ~20% of the budget at most
        (_, t1), (_, t2) = fit(n1), fit(n2)
        calib = max((t2 - t1) / (n2 - n1), 1e-3); startup = max(t1 - n1 * calib, 0.)
        epochs = max(1, int((a.minutes * 60 - startup) / calib))
    model, train_s = fit(epochs)
    diam = float(model.net.diam_labels.item())
    out, t0 = {}, time.perf_counter()
    for i, img in enumerate(tests):
        masks_i, flows, _ = model.eval(img.astype(np.float32), channels=[0, 0], diameter=diam)
        lab = np.asarray(masks_i, np.int32); n = int(lab.max())
        prob = 1 / (1 + np.exp(-np.asarray(flows[2], np.float64)))
        area = np.maximum(np.bincount(lab.ravel(), minlength=n + 1), 1)
        out[f'labels_{i}'] = lab
        out[f'scores_{i}'] = (np.bincount(lab.ravel(), prob.ravel(), minlength=n + 1) / area)[1:]
    info = dict(steps=epochs, train_s=train_s, s_per_step=train_s / epochs, unit='epoch', diameter=diam,
                calibration_s_per_epoch=calib, calibration_startup_s=startup,
                budget_used=train_s / (a.minutes * 60) if a.minutes else None, predict_s=time.perf_counter() - t0,
                device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')
    np.savez_compressed(a.out, info=json.dumps(info), **out)

if __name__ == '__main__': main()
