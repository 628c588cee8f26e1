"""Real-data benchmark: cellseg-nb (`cellseg train` given only data and a budget) against a plain smp U-Net script,
Cellpose 3 from scratch and the classical threshold + watershed baseline, on the real images of `../shared/data`.

Protocols (folds):
- `lc5-loio`: LIVECell-5, leave one image out (train on 4 annotated images, score the 5th), 5 folds;
- `lc5-lolo`: LIVECell-5, leave one cell line out (train on two lines, score the third), 3 folds;
- `usiigaci`: Usiigaci, train on sets 1-35 (validation 36-40), score sets 41-45, 1 fold;
- `lc5-usiigaci`: another microscope: train on the 5 LIVECell images, score Usiigaci sets 41-45 (another lab, other cells), 1 fold.
Budgets: `dev`, a fixed number of steps per method (about 3 CPU-minutes each on a 2-core machine), and `15min`,
15 wall-minutes of training each, alone on the machine. (Rows labelled `15min-2lanes` in the results ran two
15-minute runs of the same method side by side with one thread each: equal for every method, but about half
the steps of a run alone. Rows labelled `2.5min-5lanes` ran on one H200 GPU, the 5 folds of a method side by side
(`bench/realdata_gpu.sh`); each row records the `device` it trained on.) One run at a time (runs sharing the cores measure nothing); every finished run is
appended to `bench/out/realdata/runs.jsonl` with its predictions in `preds/`, so an interrupted benchmark resumes
where it stopped (`--force` trains recorded runs again; the newest line of a run is the one reported). `--report` pools the runs (mean +- sd over seeds; per fold and pooled over a protocol's test images)
into `bench/results/realdata.json`, which `nbs/12_train.ipynb` plots.

    python bench/realdata.py --protocols lc5-loio --methods ours smp cellpose classical --budget dev --seeds 0 1 2
    python bench/realdata.py --folds lc5-loio:0 lc5-lolo:MCF7 --budget 15min --methods ours smp cellpose
    python bench/realdata.py --ablation '{"crop_size": 512, "batch_size": 8}' --name big-crop --protocols lc5-loio
    python bench/realdata.py --ablation '{"diameter": "true"}' --name true-diameter --methods ours cellpose   # told each test image's cell size
    python bench/realdata.py --report
Scores: F1@0.5 and mSA (IoU 0.5:0.05:0.95) pooled over the test images, and COCO mask AP with LIVECell's protocol
(useCats=0, maxDets 2000, LIVECell's area ranges) against the rasterised ground truth, for every method alike.
"""
from __future__ import annotations
import argparse, json, os, re, subprocess, sys, time, warnings
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SMOKE = bool(os.environ.get('REALDATA_SMOKE'))  # a few steps per run into bench/out/realdata-smoke (tests of this script)
OUT = ROOT/('bench/out/realdata-smoke' if SMOKE else 'bench/out/realdata')
RUNS = OUT/'runs.jsonl'
RESULTS = OUT/'realdata.json' if SMOKE else ROOT/'bench/results/realdata.json'
CP_VENV = ROOT/'bench/out/cellpose-venv'
sys.path.insert(0, str(ROOT))
METHODS = ('ours', 'smp', 'cellpose', 'classical')
# dev budget: steps (cellpose: epochs) of about 3 CPU-minutes each on this 2-core machine (s/step is recorded per run)
DEV_STEPS = {'ours': 300, 'smp': 240, 'cellpose': {'lc5': 60, 'usiigaci': 6}}
if SMOKE: DEV_STEPS = {'ours': 3, 'smp': 3, 'cellpose': {'lc5': 1, 'usiigaci': 1}}
BUDGETS = ('dev', '15min')  # the CPU budgets; any 'Nmin' (N wall-minutes of training) or 'Nmin-Klanes' (K runs side by side) also works

def budget_minutes(b:str) -> float|None:
    "Wall-minutes of training of budget `b` ('dev': None, a step budget); `ValueError` for a name that is not a budget"
    if b == 'dev': return None
    m = re.fullmatch(r'(\d+(?:\.\d+)?)min(?:-(\d+)lanes)?', b)
    if not m or float(m[1]) <= 0 or (m[2] is not None and int(m[2]) < 1): raise ValueError(f"budget {b!r}; expected 'dev', 'Nmin' or 'Nmin-Klanes' (e.g. {', '.join(BUDGETS)}, 2.5min-5lanes)")
    return float(m[1])

def device_name() -> str:
    "The accelerator runs train on: the GPU's name, or the kind `cellseg train` picks ('cpu', 'xla', 'mps')"
    import torch
    from cellseg_nb.loop import _device_type
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else _device_type()

def device_of(runs) -> dict:
    "`{'device': ...}` of the machines `runs` (or rows, whose device may name several) trained on; none recorded: a CPU"
    return {'device': ', '.join(sorted({d for r in runs for d in (r.get('device') or 'cpu').split(', ')}))}

def ms(v) -> dict:
    "Mean, sd (ddof 1) and n of the finite values of `v` (a score some runs lack is NaN there): the pooling of every bench report"
    f = [float(x) for x in v if np.isfinite(x)]
    return dict(mean=float(np.mean(f)) if f else float('nan'), sd=float(np.std(f, ddof=1)) if len(f) > 1 else 0.0, n=len(f))

def shared():
    from cellseg_nb.core import shared_data
    d = shared_data()
    if d is None: sys.exit("../shared/data not found: this benchmark needs the real images of ../shared/data")
    return Path(d)

# --- data ---------------------------------------------------------------------------------------------------------
def lc5_items():
    "[(name, raw image, labels)] of the 5 annotated LIVECell images"
    from cellseg_nb.data.sources import CocoSource
    d = shared()/'livecell-sample'
    src = CocoSource(d/'livecell_coco_val.json', d/'images', cache_dir=OUT/'cache', progress=False)
    return [(src.name(i), *src.read(i)) for i in range(len(src))]

def usi_items(sets):
    "[(name, raw image, labels)] of Usiigaci sets"
    from cellseg_nb.core import read_image
    d = shared()/'usiigaci-phase/train'
    return [(f'set{s}', read_image(d/f'set{s}/raw.tif'), read_image(d/f'set{s}/instances_ids.png').astype(np.int32)) for s in sets]

def folds(protocol):
    "{fold name: (train names, val names, test names)}"
    if protocol == 'lc5-loio':
        names = [n for n, *_ in lc5_items()]
        return {'_'.join(n.split('_')[:3:2]): ([m for m in names if m != n], [], [n]) for n in names}
    if protocol == 'lc5-lolo':
        names = [n for n, *_ in lc5_items()]
        return {line: ([m for m in names if not m.startswith(line + '_')], [], [m for m in names if m.startswith(line + '_')])
                for line in ('BT474', 'Huh7', 'MCF7')}
    s = lambda a, b: [f'set{i}' for i in range(a, b + 1)]
    if protocol == 'usiigaci': return {'41-45': (s(1, 35), s(36, 40), s(41, 45))}
    if protocol == 'lc5-usiigaci': return {'41-45': ([n for n, *_ in lc5_items()], [], s(41, 45))}
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {list(PROTOCOLS)}")

PROTOCOLS = ('lc5-loio', 'lc5-lolo', 'usiigaci', 'lc5-usiigaci')

def items_of(protocol, names):
    "[(name, raw image, labels)] of `names`: Usiigaci sets are named `setN`, the rest are LIVECell-5 images"
    by = {n: (n, img, lab) for n, img, lab in lc5_items()} if any(not n.startswith('set') for n in names) else {}
    usi = dict(zip((n for n in names if n.startswith('set')), usi_items([int(n[3:]) for n in names if n.startswith('set')])))
    return [usi[n] if n in usi else by[n] for n in names]

# --- methods ----------------------------------------------------------------------------------------------------------
def fold_data(protocol, fold, work:Path):
    "Write the fold's training (and validation) data where `cellseg train` reads it; returns TrainConfig data fields"
    tr, va, _ = folds(protocol)[fold]
    work.mkdir(parents=True, exist_ok=True)
    if protocol.startswith('lc5'):
        d = shared()/'livecell-sample'
        coco = json.loads((d/'livecell_coco_val.json').read_text())
        anns = coco['annotations']; anns = list(anns.values()) if isinstance(anns, dict) else anns
        def sub(names, f):
            ims = [im for im in coco['images'] if Path(im['file_name']).stem in names]; ids = {im['id'] for im in ims}
            (work/f).write_text(json.dumps({**coco, 'images': ims, 'annotations': [a for a in anns if a['image_id'] in ids]}))
            return str(work/f)
        out = dict(annotations=sub(tr, 'train.json'), images=str(d/'images'))
        if va: out.update(val_annotations=sub(va, 'val.json'))
        return out
    def link(names, f):
        (work/f).mkdir(exist_ok=True)
        for n in names:
            if not (work/f/n).exists(): (work/f/n).symlink_to(shared()/'usiigaci-phase/train'/n)
        return str(work/f)
    return dict(data_folder=link(tr, 'train'), val_data_folder=link(va, 'val'))

def label_scores(labels, cells, fill=0.0):
    "Score of each label 1..max from a cell table (`fill` for labels the table lacks)"
    return cells.set_index('label')['score'].reindex(range(1, int(labels.max()) + 1)).fillna(fill).to_numpy()

def segment_scale(m, img, pp) -> float|None:
    "The scale `segment` runs its last pass at on `img` (no diameter given): the matched second pass, else the model's own"
    from cellseg_nb.infer import second_pass_scale, _segment, two_passes, matched_scale
    return second_pass_scale(m, _segment(m, img, pp, 1024, 128, False)[0]) if two_passes(m, None) else matched_scale(m, None)

def told_diameter(overrides) -> bool:
    "Whether an ablation tells every method each test image's true median cell diameter (`{\"diameter\": \"true\"}`, as `--diameter`)"
    if overrides.get('diameter', 'true') != 'true': raise ValueError(f"ablation diameter={overrides['diameter']!r}; expected 'true'")
    return 'diameter' in overrides

def told_diameters(overrides, items) -> list:
    "Each of `items`' true median cell diameter (px) where the ablation tells it (`told_diameter`), else None each"
    from cellseg_nb.data.targets import median_diameter
    told = told_diameter(overrides)
    return [median_diameter([lab]) if told else None for _, _, lab in items]

def run_ours(protocol, fold, budget, seed, work, overrides):
    from cellseg_nb.train import train
    from cellseg_nb.models.unet import load_model
    from cellseg_nb.predict import predict
    data = fold_data(protocol, fold, work/'data')
    lim = dict(max_steps=DEV_STEPS['ours']) if budget == 'dev' else dict(max_minutes=budget_minutes(budget))
    te = items_of(protocol, folds(protocol)[fold][2]); ds = told_diameters(overrides, te)   # a bad ablation fails before training
    s = train(out=str(work/'run'), seed=seed, progress=False, **data, **lim, **{k: v for k, v in overrides.items() if k != 'diameter'})
    model = load_model(Path(s['run'])/'best')
    preds = []
    for (name, img, _), d in zip(te, ds):
        lab, cells = predict(model, img, progress=False, diameter=d)
        preds.append((lab, label_scores(lab, cells)))
    return preds, dict(steps=s['steps'], train_s=s['minutes'] * 60, s_per_step=s['minutes'] * 60 / max(s['steps'], 1),
                       stop_reason=s['stop_reason'], tuned=s.get('tuned'), best_score=s.get('best_score'),
                       mixed_precision=s.get('mixed_precision'))

def run_smp(protocol, fold, budget, seed, work, overrides):
    from peer_smp import train_smp
    if told_diameter(overrides): raise ValueError("the smp script has no cell size to be told: run the diameter ablation with --methods ours cellpose")
    tr, va, te = folds(protocol)[fold]
    train_items = [(img, lab) for _, img, lab in items_of(protocol, tr)]  # the smp script has no validation
    lim = dict(steps=DEV_STEPS['smp']) if budget == 'dev' else dict(minutes=budget_minutes(budget))
    predict, info = train_smp(train_items, seed=seed, log=lambda *a: None, **lim)
    return [predict(img) for _, img, _ in items_of(protocol, te)], info

def cellpose_python():
    "The Python that runs Cellpose 3: `$REALDATA_CELLPOSE_PYTHON` (one that has it), else its own venv, created here once"
    if os.environ.get('REALDATA_CELLPOSE_PYTHON'): return Path(os.environ['REALDATA_CELLPOSE_PYTHON'])
    py = CP_VENV/'bin/python'
    if not py.exists():
        print(f"creating the Cellpose 3 environment in {CP_VENV} (once)", flush=True)
        subprocess.run([sys.executable, '-m', 'venv', str(CP_VENV)], check=True)
        import torch
        subprocess.run([str(py), '-m', 'pip', 'install', '-q', f"torch=={torch.__version__.split('+')[0]}", 'cellpose==3.1.1.3'], check=True)
    return py

def run_cellpose(protocol, fold, budget, seed, work, overrides):
    tr, va, te = folds(protocol)[fold]
    work.mkdir(parents=True, exist_ok=True)
    arrs = {}
    for i, (_, img, lab) in enumerate(items_of(protocol, tr)): arrs[f'train_{i}'] = img; arrs[f'mask_{i}'] = lab
    te_items = items_of(protocol, te)
    for i, ((_, img, _), d) in enumerate(zip(te_items, told_diameters(overrides, te_items))):
        arrs[f'test_{i}'] = img
        if d is not None: arrs[f'testdiam_{i}'] = np.float64(d)
    np.savez(work/'in.npz', **arrs)
    lim = ['--epochs', str(DEV_STEPS['cellpose']['lc5' if protocol.startswith('lc5') else 'usiigaci'])] if budget == 'dev' else ['--minutes', str(budget_minutes(budget))]
    subprocess.run([str(cellpose_python()), str(ROOT/'bench/peer_cellpose.py'), str(work/'in.npz'), str(work/'out.npz'), *lim,
                    '--seed', str(seed)], check=True)
    d = np.load(work/'out.npz')
    return [(d[f'labels_{i}'], d[f'scores_{i}']) for i in range(len(te))], json.loads(str(d['info']))

def run_classical(protocol, fold, budget, seed, work, overrides):
    from cellseg_nb.evaluate import classical_baseline
    preds = []
    for _, img, _ in items_of(protocol, folds(protocol)[fold][2]):
        out = classical_baseline(img); lab, cells = out if isinstance(out, tuple) else (out, None)
        sc = label_scores(lab, cells, fill=1.0) if cells is not None else None
        preds.append((np.asarray(lab), sc))
    return preds, dict(steps=0, train_s=0.0, s_per_step=None, device='cpu')

RUNNERS = dict(ours=run_ours, smp=run_smp, cellpose=run_cellpose, classical=run_classical)

# --- scoring ----------------------------------------------------------------------------------------------------------
def gt_coco(items) -> dict:
    "COCO ground truth (RLE) of [(name, image, labels)], image ids 0.."
    from cellseg_nb.metrics import labels_to_results
    from pycocotools import mask as mask_util
    images, anns = [], []
    for i, (n, img, lab) in enumerate(items):
        images.append(dict(id=i, file_name=n, height=lab.shape[0], width=lab.shape[1]))
        for r in labels_to_results(lab, None, i):
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=1, segmentation=r['segmentation'], iscrowd=0,
                             area=float(mask_util.area(r['segmentation'])), bbox=list(mask_util.toBbox(r['segmentation']))))
    return dict(images=images, annotations=anns, categories=[{'id': 1, 'name': 'cell'}])

def score(items, preds) -> dict:
    "F1@0.5, mSA (pooled) and COCO mask AP of predictions [(labels, scores)] on [(name, image, labels)]"
    from cellseg_nb.metrics import match_instances, object_scores, labels_to_results, coco_ap
    ms = [match_instances(lab, p) for (_, _, lab), (p, _) in zip(items, preds)]
    pooled = object_scores([None] * len(ms), ms)['summary']['pooled']
    res = []
    for i, (p, sc) in enumerate(preds):
        s = None if sc is None else np.r_[0.0, np.asarray(sc, float)]
        res += labels_to_results(p, s, i)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ap = coco_ap(gt_coco(items), res, group_of=lambda fn: None)['AP']
    return dict(f1=pooled['f1@0.5'], msa=pooled['msa'], ap=ap, precision=pooled['precision@0.5'], recall=pooled['recall@0.5'],
                dice=pooled['dice'], n_true=int(sum(m['n_true'] for m in ms)), n_pred=int(sum(m['n_pred'] for m in ms)))

# --- driver -----------------------------------------------------------------------------------------------------------
def key(r): return (r['protocol'], r['fold'], r['method'], r['budget'], r['seed'])

def done_runs() -> dict:
    if not RUNS.exists(): return {}
    rs = [json.loads(l) for l in RUNS.read_text().splitlines() if l.strip()]
    return {key(r): r for r in rs}

def record_run(r, preds):
    "Keep a finished run: its predictions in preds/ and its row appended to runs.jsonl"
    (OUT/'preds').mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT/'preds'/f"{r['protocol']}_{r['fold']}_{r['method']}_{r['budget']}_{r['seed']}.npz",
                        **{f'labels_{i}': p for i, (p, _) in enumerate(preds)},
                        **{f'scores_{i}': (s if s is not None else np.ones(int(p.max()))) for i, (p, s) in enumerate(preds)})
    with open(RUNS, 'a') as f: f.write(json.dumps(r) + '\n')

def run_one(protocol, fold, method, budget, seed, overrides, name):
    "Train + predict + score one (protocol, fold, method, budget, seed) in this process; append it to runs.jsonl"
    mname = method if not name else f'{method}[{name}]'
    work = OUT/'work'/f'{protocol}_{fold}_{mname}_{budget}_{seed}'
    if work.exists():
        import shutil; shutil.rmtree(work)
    t0 = time.perf_counter()
    preds, info = RUNNERS[method](protocol, fold, budget, seed, work, overrides)
    items = items_of(protocol, folds(protocol)[fold][2])
    r = dict(protocol=protocol, fold=fold, method=mname, budget=budget, seed=seed, overrides=overrides,
             **score(items, preds), **{k: v for k, v in info.items() if k in RUN_INFO_KEYS},
             wall_s=time.perf_counter() - t0, device=info.get('device') or device_name(), test=[n for n, *_ in items], when=time.strftime('%Y-%m-%d %H:%M'))
    record_run(r, preds)
    print(f"{mname:>18} {protocol}:{fold:<8} {budget} seed {seed}: F1 {r['f1']:.3f} mSA {r['msa']:.3f} AP {r['ap']:.3f} "
          f"({r['steps']} steps, {r['wall_s']:.0f}s)", flush=True)
    return r

def plan(args):
    jobs = []
    fl = [f.split(':', 1) for f in args.folds] if args.folds else [(p, f) for p in args.protocols for f in folds(p)]
    for seed in args.seeds:
        for p, f in fl:
            for m in args.methods:
                if m == 'classical' and (seed != args.seeds[0] or args.name): continue
                jobs.append((p, f, m, args.budget, seed))
    return jobs

# --- report -----------------------------------------------------------------------------------------------------------
def report():
    "Per fold and pooled (over a protocol's test images) mean +- sd over seeds; written to bench/results/realdata.json"
    from collections import defaultdict
    runs = list(done_runs().values())
    by = defaultdict(list)
    for r in runs: by[(r['protocol'], r['budget'], r['method'], r['seed'])].append(r)
    pooled = defaultdict(list)  # (protocol, budget, method) -> [pooled scores per seed]
    by_pm = defaultdict(list)   # (protocol, budget, method) -> the runs pooled
    for (p, b, m, s), rs in sorted(by.items()):
        fl = folds(p)
        if {r['fold'] for r in rs} != set(fl): continue  # a protocol is pooled only when every fold ran
        items, preds = [], []
        for r in sorted(rs, key=lambda r: r['fold']):
            d = np.load(OUT/'preds'/f"{p}_{r['fold']}_{m}_{b}_{s}.npz")
            its = items_of(p, fl[r['fold']][2]); items += its
            preds += [(d[f'labels_{i}'], d[f'scores_{i}']) for i in range(len(its))]
        by_pm[(p, b, m)] += rs
        pooled[(p, b, m)].append(dict(seed=s, **score(items, preds), s_per_step=float(np.mean([r['s_per_step'] or 0 for r in rs])),
                                      steps=float(np.mean([r['steps'] for r in rs]))))
    per_fold = defaultdict(list)
    for r in runs: per_fold[(r['protocol'], r['budget'], r['method'], r['fold'])].append(r)
    out = dict(pooled=[pooled_row(p, b, m, [{k: x[k] for k in POOLED_KEYS} for x in v], **device_of(by_pm[(p, b, m)]))
                       for (p, b, m), v in sorted(pooled.items())],
               per_fold=[fold_row(p, b, m, f, [{k: x.get(k) for k in SEED_KEYS} for x in v], **device_of(v)) for (p, b, m, f), v in sorted(per_fold.items())],
               protocol=__doc__.split('\n\n')[1], when=time.strftime('%Y-%m-%d %H:%M'))
    out = keep_earlier(out)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))
    for r in out['pooled']:
        print(f"{r['protocol']:>9} {r['budget']:>5} {r['method']:>24}: F1 {r['f1']['mean']:.3f}±{r['f1']['sd']:.3f} "
              f"mSA {r['msa']['mean']:.3f}±{r['msa']['sd']:.3f} AP {r['ap']['mean']:.3f}±{r['ap']['sd']:.3f} "
              f"(n={r['f1']['n']}, {r['steps']['mean']:.0f} steps, {r['s_per_step']['mean']:.2f} s/step)")
    return out

RUN_INFO_KEYS = ('steps', 'train_s', 's_per_step', 'stop_reason', 'unit', 'mixed_precision', 'budget_used', 'planned_epochs', 'stopped_on_clock',
                 'calibration_s_per_epoch', 'calibration_startup_s')  # what runs.jsonl keeps of a runner's info
SCORE_KEYS = ('seed', 'f1', 'msa', 'ap', 'steps')
SEED_KEYS = SCORE_KEYS + ('train_s',)      # what a per-fold row keeps of each of its runs
POOLED_KEYS = SCORE_KEYS + ('s_per_step',)  # ... and a pooled row of each seed

def fold_row(p, b, m, f, seeds:list, **extra) -> dict:
    "A per-fold row: mean +- sd over `seeds` (one dict of `SEED_KEYS` per run), which it keeps"
    return dict(protocol=p, budget=b, method=m, fold=f, **{k: ms([x[k] for x in seeds]) for k in ('f1', 'msa', 'ap')},
                steps=float(np.mean([x['steps'] for x in seeds])), seeds=[x['seed'] for x in seeds], per_seed=seeds, **extra)

def pooled_row(p, b, m, seeds:list, **extra) -> dict:
    "A pooled row: mean +- sd over `seeds` (one dict of `POOLED_KEYS` per seed), which it keeps"
    return dict(protocol=p, budget=b, method=m, **{k: ms([x[k] for x in seeds]) for k in POOLED_KEYS[1:]},
                seeds=[x['seed'] for x in seeds], per_seed=seeds, **extra)

def earlier_seeds(r:dict) -> list:
    "The seeds an earlier row was made of (a row of one seed from before rows kept them: its mean is the seed)"
    if 'per_seed' in r: return r['per_seed']
    if r['f1']['n'] != 1 or len(r['seeds']) != 1: return []
    return [dict(seed=r['seeds'][0], **{k: (v['mean'] if isinstance(v, dict) else v) for k in POOLED_KEYS[1:] if (v := r.get(k)) is not None})]

def keep_earlier(out:dict) -> dict:
    "Earlier rows these runs do not measure again, marked `measured`; a row measured again keeps the earlier seeds its runs lack (an old row without per-seed values cannot take new seeds in: kept whole unless they cover its seeds)"
    if not RESULTS.exists(): return out
    prev = json.loads(RESULTS.read_text())
    for part, key, make in (('pooled', ('protocol', 'budget', 'method'), pooled_row), ('per_fold', ('protocol', 'budget', 'method', 'fold'), fold_row)):
        old = {tuple(r[k] for k in key): r for r in prev.get(part, [])}
        for i, r in enumerate(out[part]):   # runs.jsonl may not hold every run a row was made of (a fresh bench/out)
            e = old.get(tuple(r[k] for k in key))
            if e and not earlier_seeds(e) and set(e['seeds']) - set(r['seeds']):   # its seeds' values are lost: keep it whole
                print(f"{' '.join(map(str, (r[k] for k in key)))}: the earlier row of seeds {e['seeds']} has no per-seed values to merge the new "
                      f"seed(s) {r['seeds']} into; it is kept as it was (the new runs stay in runs.jsonl)", flush=True)
                out[part][i] = {**e, 'measured': e.get('measured', prev.get('when'))}; continue
            add = [x for x in (earlier_seeds(e) if e else []) if x['seed'] not in r['seeds']]
            if not add: continue
            when = {str(x['seed']): e.get('seeds_measured', {}).get(str(x['seed'])) or e.get('measured') or prev.get('when') for x in add}
            out[part][i] = make(*(r[k] for k in key), sorted(r['per_seed'] + add, key=lambda x: x['seed']), seeds_measured=when, **device_of([r, e]))
        have = {tuple(r[k] for k in key) for r in out[part]}
        out[part] += [{**r, 'measured': r.get('measured', prev.get('when'))} for r in prev.get(part, []) if tuple(r[k] for k in key) not in have]
        out[part].sort(key=lambda r: tuple(str(r[k]) for k in key))
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--protocols', nargs='+', default=list(PROTOCOLS), choices=PROTOCOLS)
    ap.add_argument('--folds', nargs='+', help='PROTOCOL:FOLD pairs instead of whole protocols')
    ap.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    ap.add_argument('--budget', default='dev', help=f"{', '.join(BUDGETS)}, or any 'Nmin' / 'Nmin-Klanes' (e.g. 2.5min-5lanes on a GPU)")
    ap.add_argument('--seeds', nargs='+', type=int, default=[0])
    ap.add_argument('--ablation', default='{}', help='JSON of TrainConfig fields for `ours`, or {"diameter": "true"} (ours and Cellpose told each test image\'s cell size); an ablation row: give --name')
    ap.add_argument('--name', default='', help='name of the ablation row, e.g. crop512')
    ap.add_argument('--threads', type=int, help='torch threads per run (default: torch chooses)')
    ap.add_argument('--one', nargs=5, metavar=('PROTOCOL', 'FOLD', 'METHOD', 'BUDGET', 'SEED'), help=argparse.SUPPRESS)
    ap.add_argument('--report', action='store_true', help='pool the finished runs into bench/results/realdata.json')
    ap.add_argument('--force', action='store_true', help='train again the runs runs.jsonl has (its newest line of a run is the one reported)')
    a = ap.parse_args(argv)
    try: budget_minutes(a.one[3] if a.one else a.budget)
    except ValueError as e: ap.error(str(e))
    OUT.mkdir(parents=True, exist_ok=True)
    overrides = json.loads(a.ablation)
    if a.report: report(); return
    if a.one:
        p, f, m, b, s = a.one
        run_one(p, f, m, b, int(s), overrides, a.name); return
    done = done_runs()
    for p, f, m, b, s in plan(a):
        mname = m if not a.name else f'{m}[{a.name}]'
        if (p, f, mname, b, s) in done and not a.force: continue
        cmd = [sys.executable, __file__, '--one', p, f, m, b, str(s), '--ablation', a.ablation, '--name', a.name]
        env = {**os.environ, **({'OMP_NUM_THREADS': str(a.threads), 'MKL_NUM_THREADS': str(a.threads)} if a.threads else {})}
        rc = subprocess.run(cmd, cwd=ROOT/'bench', env=env).returncode
        if rc: print(f"FAILED ({rc}): {' '.join(cmd)}", flush=True)

if __name__ == '__main__': main()
