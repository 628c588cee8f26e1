"""Peer (b) of the real-data benchmark: Cellpose 3.1.1.3 trained from scratch, as its docs show.

Runs inside its own virtual environment (Cellpose 3 pins numpy < 2.1), created by `bench/realdata.py` on first
use; imports nothing from cellseg_nb. `CellposeModel(pretrained_model=False, model_type=None, diam_mean=30)`,
`train.train_seg` with its own defaults (flows precomputed from the label images), on the GPU where there is one, prediction with
`diameter=` the training masks' `diam_labels` (or each test image's own, where IN.npz gives `testdiam_<i>`); nothing is downloaded.

    python peer_cellpose.py IN.npz OUT.npz (--epochs N | --minutes M) --seed S [--tune JSON]
IN.npz holds train_0.., mask_0.., test_0..; OUT.npz gets labels_i, scores_i and an info json string.
`--tune '{"diameter": D, "cellprob": [...], "flow": [...]}'` (with tune_0.. in IN.npz, a user's annotated images) also
segments the tune and test images at diameter D with every pair of Cellpose's two thresholds (`cellprob_threshold`,
`flow_threshold`, the ones its docs tell users to adjust), the network run once per image: `tlabels_<k>_<i>` (tune
images) and `labels_<k>_<i>` (test images) for pair k of info['pairs'], with each mask's score in `tlabelsscores_<k>_<i>` /
`labelsscores_<k>_<i>` (runs trained after 2026-12-05 05:30), for the caller to choose on the tune images.
`"diameters": {"KEY": D, ...}` in that JSON also segments the test images at each D with the default thresholds
(`sub_<KEY>_<i>`, scores `subscores_<KEY>_<i>`): the diameter a user measures on fewer annotated images (from 2026-12-05 10:00).
A time budget is met by timing calibration runs first (not counted): a 3-epoch warm-up (one-time costs of the
process), then 10 and 40 epochs, whose difference gives the steady time per epoch and the rest the start-up (flows),
so it trains for (budget - start-up) / (s per epoch) epochs; `budget_used` in the info says how well that worked.
Where an epoch is long (many or large images: Usiigaci's 35 take ~26 s), 10 and 40 become N/4 and N epochs with N
sized to about a fifth of the budget (at least 8), so calibration no longer costs more than the training itself.
(Until 2026-12-03 one 10-epoch run, start-up included, set the rate; it trained 624-732 s of 900.)
Calibration cannot foresee a slow-down that comes later (5 lanes sharing one GPU trained 179-237 s of 150, the
first GPU rows), so the training also runs on the clock (`ClockAdamW`, from 2026-12-04): its learning rate follows
Cellpose's own schedule at whichever is further on, the epoch or the fraction of the budget spent, so the final decay
still happens, and it stops at the budget (`stopped_on_clock` in the info). Where calibration was right this changes little.
"""
import argparse, json, logging, tempfile, time
import numpy as np, torch

def cellpose_lr(n_epochs, learning_rate=0.005):
    "Cellpose 3.1.1.3's learning rate per epoch (`train.train_seg`): 10 warm-up epochs, flat, then halved 10 times at the end"
    lr = np.append(np.linspace(0, learning_rate, 10), learning_rate * np.ones(max(0, n_epochs - 10)))
    if n_epochs > 300: lr = np.append(lr[:-100], np.repeat(lr[-101] / 2 ** np.arange(1, 11), 10))
    elif n_epochs > 100: lr = np.append(lr[:-50], np.repeat(lr[-51] / 2 ** np.arange(1, 11), 5))
    return lr

def mean_prob(lab, cellprob) -> np.ndarray:
    "Each mask's score, as the bench scores Cellpose's cells for AP: the mean sigmoid of `cellprob` over the mask (labels 1..max)"
    lab = np.asarray(lab); n = int(lab.max())
    if lab.shape != np.shape(cellprob): raise ValueError(f"masks {lab.shape} and cellprob {np.shape(cellprob)} differ in size")
    prob = 1 / (1 + np.exp(-np.asarray(cellprob, np.float64)))
    return (np.bincount(lab.ravel(), prob.ravel(), minlength=n + 1) / np.maximum(np.bincount(lab.ravel(), minlength=n + 1), 1))[1:]

class OutOfTime(Exception): "The clock budget of a training run is spent"

class ClockAdamW(torch.optim.AdamW):
    "AdamW whose learning rate follows `cellpose_lr` at the further of epoch and budget fraction, and which stops at the budget"
    clock = None  # dict(t0=perf_counter at the run's start, budget_s, n_epochs, steps_per_epoch, lr=cellpose_lr(n_epochs)) while a budgeted run trains
    def __init__(self, *args, **kwargs): super().__init__(*args, **kwargs); self.n_steps = 0
    def step(self, closure=None):
        c = ClockAdamW.clock
        if c is not None:
            now = time.perf_counter(); start = c.setdefault('t_first', now)  # the first step: start-up (flows) is over
            if now - c['t0'] >= c['budget_s']: raise OutOfTime()
            f = (now - start) / max(c['t0'] + c['budget_s'] - start, 1e-9)  # fraction of the training time spent
            e_time, e_done = int(f * c['n_epochs']), self.n_steps // c['steps_per_epoch']
            if e_time > e_done:  # behind the clock: take the schedule's value for the budget fraction spent
                for g in self.param_groups: g['lr'] = c['lr'][min(e_time, c['n_epochs'] - 1)]
        self.n_steps += 1
        if c is not None: c['epochs_done'] = self.n_steps // c['steps_per_epoch']
        return super().step(closure)

def train_on_clock(train_seg, n_epochs:int, budget_s:float|None=None, n_images:int=1, batch_size:int=8, **kwargs):
    "Run `train_seg(n_epochs=..., **kwargs)`, on the clock where `budget_s` is given; returns (seconds, epochs done if the clock stopped it, else None)"
    torch.optim.AdamW = ClockAdamW  # what train_seg builds (its default optimiser); off the clock it is plain AdamW
    t0, stopped = time.perf_counter(), False
    clock = None if budget_s is None else dict(t0=t0, budget_s=budget_s, n_epochs=n_epochs, epochs_done=0, lr=cellpose_lr(n_epochs),
                                               steps_per_epoch=max(-(-n_images // batch_size), 1))
    ClockAdamW.clock = clock
    try: train_seg(n_epochs=n_epochs, **kwargs)
    except OutOfTime: stopped = True  # the net was trained in place; its weights are the run's
    finally: ClockAdamW.clock = None
    return time.perf_counter() - t0, (clock['epochs_done'] if stopped else None)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('inp'); ap.add_argument('out')
    ap.add_argument('--epochs', type=int); ap.add_argument('--minutes', type=float); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--tune', type=json.loads, help='{"diameter": D, "cellprob": [...], "flow": [...], "diameters": {KEY: D}}: segment tune_i and test_i at every pair (and test_i at each D of "diameters")')
    a = ap.parse_args()
    from cellpose import models, train
    logging.getLogger('cellpose').setLevel(logging.WARNING)
    d = np.load(a.inp)
    imgs = [d[k].astype(np.float32) for k in sorted((k for k in d if k.startswith('train_')), key=lambda k: int(k.split('_')[1]))]
    masks = [d[k].astype(np.int32) for k in sorted((k for k in d if k.startswith('mask_')), key=lambda k: int(k.split('_')[1]))]
    tests = [d[k] for k in sorted((k for k in d if k.startswith('test_')), key=lambda k: int(k.split('_')[1]))]
    test_diams = [float(d[f'testdiam_{i}']) if f'testdiam_{i}' in d else None for i in range(len(tests))]  # told each image's cell size
    n_train = sum(int(m.max() > 0) for m in masks)  # what train_seg keeps (min_train_masks=1): its batches per epoch

    def fit(n_epochs, budget_s=None):
        torch.manual_seed(a.seed); np.random.seed(a.seed)
        model = models.CellposeModel(gpu=torch.cuda.is_available(), pretrained_model=False, model_type=None, diam_mean=30.)
        with tempfile.TemporaryDirectory() as td:
            s, done = train_on_clock(train.train_seg, n_epochs, budget_s, n_train, net=model.net, train_data=imgs, train_labels=masks,
                                     channels=[0, 0], save_path=td, model_name='peer', min_train_masks=1)
        return model, s, done

    epochs, calib, startup = a.epochs, None, None
    if epochs is None:
        t3 = fit(3)[1]
        n2 = int(np.clip(a.minutes * 60 * 0.2 / (t3 / 3), 8, 40)); n1 = max(2, n2 // 4)  # calibration ~20% of the budget at most
        t1, t2 = fit(n1)[1], fit(n2)[1]
        calib = max((t2 - t1) / (n2 - n1), 1e-3); startup = max(t1 - n1 * calib, 0.)
        epochs = max(1, int((a.minutes * 60 - startup) / calib))
    model, train_s, done = fit(epochs, a.minutes * 60 if a.minutes else None)
    planned, stopped = epochs, done is not None
    if stopped: epochs = done
    diam = float(model.net.diam_labels.item())
    out, t0 = {}, time.perf_counter()
    for i, img in enumerate(tests):
        masks_i, flows, _ = model.eval(img.astype(np.float32), channels=[0, 0], diameter=test_diams[i] or diam)
        lab = np.asarray(masks_i, np.int32)
        out[f'labels_{i}'], out[f'scores_{i}'] = lab, mean_prob(lab, flows[2])
    predict_s, pairs, same = time.perf_counter() - t0, [], None
    if a.tune:
        tunes = [d[k] for k in sorted((k for k in d if k.startswith('tune_')), key=lambda k: int(k.split('_')[1]))]
        pairs = [(c, f) for c in a.tune['cellprob'] for f in a.tune['flow']]
        rescale = model.diam_mean / a.tune['diameter']
        for tag, ims in (('tlabels', tunes), ('labels', tests)):
            for i, img in enumerate(ims):
                _, flows, _ = model.eval(img.astype(np.float32), channels=[0, 0], diameter=a.tune['diameter'], compute_masks=False)
                dP, cp = flows[1], flows[2]   # at the image's size (resampled), as eval computes its masks from them
                for k, (c, f) in enumerate(pairs):
                    m = model._compute_masks((1, *cp.shape, 2), dP[:, None], cp[None], flow_threshold=f, cellprob_threshold=c, niter=200 / rescale)   # eval's own niter
                    out[f'{tag}_{k}_{i}'] = lab = np.asarray(m, np.int32)
                    out[f'{tag}scores_{k}_{i}'] = mean_prob(lab, cp)
        for key, dk in (a.tune.get('diameters') or {}).items():   # fewer annotated images: their diameter, Cellpose's default thresholds
            for i, img in enumerate(tests):
                m, flows, _ = model.eval(img.astype(np.float32), channels=[0, 0], diameter=dk)
                out[f'sub_{key}_{i}'] = lab = np.asarray(m, np.int32)
                out[f'subscores_{key}_{i}'] = mean_prob(lab, flows[2])
        if (0.0, 0.4) in pairs and tests:   # the defaults' pair is what a plain eval at that diameter gives
            same = bool(np.array_equal(out[f'labels_{pairs.index((0.0, 0.4))}_0'], model.eval(tests[0].astype(np.float32), channels=[0, 0], diameter=a.tune['diameter'])[0]))
    info = dict(steps=epochs, pairs=pairs, diameters=(a.tune or {}).get('diameters') or {}, default_pair_as_eval=same, planned_epochs=planned, stopped_on_clock=stopped, train_s=train_s, s_per_step=train_s / max(epochs, 1), unit='epoch', diameter=diam,
                calibration_s_per_epoch=calib, calibration_startup_s=startup,
                budget_used=train_s / (a.minutes * 60) if a.minutes else None, predict_s=predict_s,
                device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')
    np.savez_compressed(a.out, info=json.dumps(info), **out)

if __name__ == '__main__': main()
