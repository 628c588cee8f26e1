"""bench/realdata.py end to end at a few steps (REALDATA_SMOKE): folds, our recipe through `train`, the smp peer,
the classical baseline, scoring and the report. Skips where ../shared/data is absent. Cellpose needs its own
environment (created by the bench on first use), so it is not run here."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'bench'))
from cellseg_nb.core import shared_data

needs_data = pytest.mark.skipif(shared_data('livecell-sample') is None, reason='needs ../shared/data')

def rd_device():
    import realdata as rd
    return rd.device_name()

def test_told_diameter():
    import realdata as rd
    assert not rd.told_diameter({'augment': 'strong'}) and rd.told_diameter({'diameter': 'true'})   # the oracle ablation
    with pytest.raises(ValueError, match="expected 'true'"): rd.told_diameter({'diameter': 30})
    import numpy as np
    lab = np.zeros((40, 40), np.int32); lab[:10, :10] = 1; lab[20:30, 20:40] = 2      # areas 100 and 200: disks 11.3 and 16.0 px across
    assert rd.told_diameters({'diameter': 'true'}, [('a', None, lab)])[0] == pytest.approx(np.sqrt(100 / np.pi) + np.sqrt(200 / np.pi))
    assert rd.told_diameters({}, [('a', None, lab)]) == [None]
    with pytest.raises(ValueError, match='no cell size'): rd.run_smp('lc5-usiigaci', '41-45', 'dev', 0, None, {'diameter': 'true'})

def test_seedh_groups_keep_ablations_apart():
    import realdata_seedh as sh   # an ablation's models are pooled on their own, not with the defaults'
    assert sh.group('lc5-lolo_BT474_ours_dev_0') == 'lc5-lolo dev seed 0'
    assert sh.group('lc5-loio_BT474_C3_ours_15min_2') == 'lc5-loio 15min seed 2'
    assert sh.group('lc5-lolo_BT474_ours[centre]_dev_0') == 'lc5-lolo dev seed 0 ours[centre]'
    assert sh.group('lc5-loio_BT474_C3_ours[big_crop]_15min_1') == 'lc5-loio 15min seed 1 ours[big_crop]'

@needs_data
def test_folds_cover_every_image_once():
    import realdata as rd
    names = {n for n, *_ in rd.lc5_items()}
    for p in ('lc5-loio', 'lc5-lolo'):
        tested = [n for tr, va, te in rd.folds(p).values() for n in te]
        assert sorted(tested) == sorted(names), p        # every image is scored exactly once per protocol
        for tr, va, te in rd.folds(p).values(): assert not set(tr) & set(te)
    tr, va, te = rd.folds('usiigaci')['41-45']
    assert (len(tr), len(va), len(te)) == (35, 5, 5) and not (set(tr) | set(va)) & set(te)
    tr, va, te = rd.folds('lc5-usiigaci')['41-45']      # another microscope: all of LIVECell-5 in, Usiigaci's test sets out
    assert sorted(tr) == sorted(names) and va == [] and te == rd.folds('usiigaci')['41-45'][2]
    assert [n for n, *_ in rd.items_of('lc5-usiigaci', te + tr[:1])] == te + tr[:1]   # each name read from its own dataset
    assert set(rd.PROTOCOLS) == {'lc5-loio', 'lc5-lolo', 'usiigaci', 'lc5-usiigaci'}

def test_budgets():
    import realdata as rd
    assert rd.budget_minutes('dev') is None and rd.budget_minutes('15min') == 15 and rd.budget_minutes('2.5min-5lanes') == 2.5
    for bad in ('15', '15 min', '0min', 'min-2lanes', '3min-lanes', '2.5min-0lanes'):
        with pytest.raises(ValueError, match='Nmin-Klanes'): rd.budget_minutes(bad)
    r = subprocess.run([sys.executable, str(ROOT/'bench/realdata.py'), '--budget', '15 minutes'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "budget '15 minutes'" in r.stderr     # argparse names the bad budget and the valid forms
    r = subprocess.run([sys.executable, str(ROOT/'bench/realdata.py'), '--one', 'lc5-loio', 'MCF7_F4', 'classical', '15', '0'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "budget '15'" in r.stderr              # --one too (bench/realdata_gpu.sh runs lanes with it)
    assert rd.device_of([{'device': 'NVIDIA H200'}, {}, {'device': 'cpu'}]) == {'device': 'NVIDIA H200, cpu'}   # runs without one: CPUs

@needs_data
def test_score_perfect_and_empty():
    import numpy as np, realdata as rd
    items = rd.lc5_items()[2:3]                          # Huh7, 73 cells
    lab = items[0][2]
    perfect = rd.score(items, [(lab, np.ones(int(lab.max())))])
    assert perfect['f1'] == 1 and perfect['msa'] == 1 and perfect['ap'] > 0.95
    empty = rd.score(items, [(np.zeros_like(lab), np.zeros(0))])
    assert empty['f1'] == 0 and empty['ap'] <= 0

@needs_data
def test_smoke_run_and_report(tmp_path):
    env = {**os.environ, 'REALDATA_SMOKE': '1'}
    out = ROOT/'bench/out/realdata-smoke'
    if out.exists():
        import shutil; shutil.rmtree(out)
    cmd = [sys.executable, str(ROOT/'bench/realdata.py'), '--folds', 'lc5-loio:Huh7_A10', '--methods', 'classical', 'smp', 'ours', '--threads', '1']
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = [json.loads(l) for l in (out/'runs.jsonl').read_text().splitlines()]
    assert {x['method'] for x in runs} == {'classical', 'smp', 'ours'}
    assert all(0 <= x['f1'] <= 1 and x['n_true'] == 73 and x['device'] == rd_device() for x in runs)
    assert all(x['mixed_precision'] in ('no', 'bf16') for x in runs if x['method'] == 'ours')   # dev rows differ by the CPU's precision
    r = subprocess.run([sys.executable, str(ROOT/'bench/realdata.py'), '--report'], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((out/'realdata.json').read_text())
    assert {x['method'] for x in rep['per_fold']} == {'classical', 'smp', 'ours'}
    assert all(x['device'] == rd_device() for x in rep['per_fold'] + rep['pooled'])    # which machine trained each row
    # post-processing variants on the model just trained; the product's variant becomes the `ours` run
    cmd = [sys.executable, str(ROOT/'bench/realdata_postprocess.py'), '--method', 'ours', '--protocols', 'lc5-loio', '--as-ours']
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    import realdata_postprocess as rpp
    pp = json.loads((out/'realdata_postprocess.json').read_text())
    assert {x['variant'] for x in pp['per_fold']} == set(rpp.variants()) and all(x['fold'] == 'Huh7_A10' for x in pp['per_fold'])
    nf = next(x for x in pp['per_fold'] if x['variant'] == 'matched,native-first')['params']['passes']   # its first pass at the image's size, recorded
    assert len(nf) == 1 and nf[0]['s'] > 0 and (nf[0]['first_d'] or 1) > 0   # no size where the small model's first pass found no cell
    last = [json.loads(l) for l in (out/'runs.jsonl').read_text().splitlines()][-1]
    assert (last['method'], last['trained_as'], last['variant']) == ('ours', 'ours', rpp.PRODUCT)
    assert last['f1'] == next(x['f1'] for x in pp['per_fold'] if x['variant'] == rpp.PRODUCT)
    assert next(x for x in pp['per_fold'] if x['variant'] == rpp.AUTO_H)['params']['seed_h'] == 'auto'   # the option: each image's own height
    # the separation power changes the cell scores only, so F1 is the product's; redoing one variant keeps the others' rows
    f1 = {x['variant']: x['f1'] for x in pp['per_fold']}
    assert f1['matched,sep0'] == f1['matched,sep1'] == f1[rpp.PRODUCT]
    r = subprocess.run(cmd[:-1] + ['--variants', 'matched,sep1'], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    again = json.loads((out/'realdata_postprocess.json').read_text())
    assert sorted(x['variant'] for x in again['per_fold']) == sorted(x['variant'] for x in pp['per_fold'])

@needs_data
def test_diameter_variants_report():
    # bench/realdata_diameter.py --variants: per variant and domain, automatic vs true-diameter F1 and the size error
    import math, realdata_diameter as rdd
    rows = [dict(variant='ours[z]', image='BT474_x', auto_f=1.0, auto_f1=0.5, oracle_f=0.5, oracle_f1=0.6),
            dict(variant='ours[z]', image='Huh7_x', auto_f=0.5, auto_f1=0.3, oracle_f=0.5, oracle_f1=0.3),
            dict(variant='ours[z]', image='set41', auto_f=1.0, auto_f1=0.1, oracle_f=0.25, oracle_f1=0.4)]
    t = rdd.variants_report(rows)['ours[z]']
    assert t['livecell_lolo']['auto']['mean'] == 0.4 and t['livecell_lolo']['oracle']['n'] == 2
    assert math.isclose(t['livecell_lolo']['size_error']['mean'], math.log(2) / 2) and math.isclose(t['usiigaci']['size_error']['mean'], math.log(4))

def test_report_keeps_earlier_seeds(tmp_path, monkeypatch):
    # a fold row measured again keeps the seeds of the earlier row that the new runs lack (runs.jsonl may be fresh)
    import realdata as rd
    ms = lambda v: dict(mean=v, sd=0.0, n=1)
    old = dict(protocol='lc5-lolo', budget='15min', method='ours', fold='Huh7', f1=ms(0.2), msa=ms(0.05), ap=ms(0.1), steps=500.0, seeds=[0])  # no device: a CPU
    two = dict(old, fold='MCF7', f1=dict(mean=0.5, sd=0.1, n=2), seeds=[0, 1])   # two runs and no per-seed values: kept whole, not replaced by one seed
    gone = dict(old, fold='BT474')                                                # not measured again: kept, dated
    redo = dict(two, fold='SKOV3')                                                # the same, its seeds all run again: replaced
    monkeypatch.setattr(rd, 'RESULTS', tmp_path/'r.json')
    pool = dict(protocol='usiigaci', budget='dev', method='ours', f1=ms(0.6), msa=ms(0.2), ap=ms(0.2), steps=ms(300), s_per_step=ms(2.0), seeds=[0])
    rd.RESULTS.write_text(json.dumps(dict(pooled=[pool], per_fold=[old, two, gone, redo], when='2026-12-01 10:00')))
    new = lambda f: rd.fold_row('lc5-lolo', '15min', 'ours', f, [dict(seed=1, f1=0.4, msa=0.1, ap=0.2, steps=520)], device='NVIDIA H200')
    pnew = rd.pooled_row('usiigaci', 'dev', 'ours', [dict(seed=1, f1=0.7, msa=0.2, ap=0.2, steps=300, s_per_step=4.0)])
    again = rd.fold_row('lc5-lolo', '15min', 'ours', 'SKOV3', [dict(seed=k, f1=0.4, msa=0.1, ap=0.2, steps=520) for k in (0, 1, 2)])
    out = rd.keep_earlier(dict(pooled=[pnew], per_fold=[new('Huh7'), new('MCF7'), again]))
    assert out['pooled'][0]['seeds'] == [0, 1] and abs(out['pooled'][0]['f1']['mean'] - 0.65) < 1e-9 and out['pooled'][0]['s_per_step']['mean'] == 3
    rows = {r['fold']: r for r in out['per_fold']}
    h = rows['Huh7']
    assert h['seeds'] == [0, 1] and h['f1']['n'] == 2 and abs(h['f1']['mean'] - 0.3) < 1e-9 and h['steps'] == 510
    assert h['seeds_measured'] == {'0': '2026-12-01 10:00'} and [x['seed'] for x in rd.earlier_seeds(h)] == [0, 1]
    assert h['device'] == 'NVIDIA H200, cpu' and 'device' not in rows['MCF7']   # a row that took in earlier seeds names both machines; the kept one stays as it was
    assert rows['MCF7']['seeds'] == [0, 1] and rows['MCF7']['f1']['mean'] == 0.5 and rows['MCF7']['measured'] == '2026-12-01 10:00'
    assert rows['BT474']['measured'] == '2026-12-01 10:00'
    assert rows['SKOV3']['seeds'] == [0, 1, 2] and abs(rows['SKOV3']['f1']['mean'] - 0.4) < 1e-9

def cellpose_3_lr(n_epochs, learning_rate=0.005):
    "Cellpose 3.1.1.3's schedule as its `train.train_seg` writes it, copied line for line"
    import numpy as np
    LR = np.linspace(0, learning_rate, 10)
    LR = np.append(LR, learning_rate * np.ones(max(0, n_epochs - 10)))
    if n_epochs > 300:
        LR = LR[:-100]
        for i in range(10): LR = np.append(LR, LR[-1] / 2 * np.ones(10))
    elif n_epochs > 100:
        LR = LR[:-50]
        for i in range(10): LR = np.append(LR, LR[-1] / 2 * np.ones(5))
    return LR

def test_cellpose_peer_runs_on_the_clock(monkeypatch):
    import numpy as np, torch, peer_cellpose as pc
    for n in (3, 40, 150, 301, 2700): np.testing.assert_allclose(pc.cellpose_lr(n), cellpose_3_lr(n))   # the same schedule
    now = [100.]; monkeypatch.setattr(pc, 'time', type('T', (), {'perf_counter': staticmethod(lambda: now[0])}))
    monkeypatch.setattr(torch.optim, 'AdamW', torch.optim.AdamW)   # train_on_clock swaps it; undone after the test
    w = torch.nn.Parameter(torch.zeros(1)); opt = pc.ClockAdamW([w], lr=0.005)
    def step(lr_set):                                    # what train_seg does each epoch (one batch an epoch here)
        for g in opt.param_groups: g['lr'] = lr_set
        w.grad = torch.ones(1); opt.step(); return opt.param_groups[0]['lr']
    monkeypatch.setattr(pc.ClockAdamW, 'clock', c := dict(t0=100., budget_s=100., n_epochs=400, epochs_done=0, steps_per_epoch=1, lr=pc.cellpose_lr(400)))
    now[0] = 110.; assert step(0.) == 0.                 # the first step starts the clock (start-up: 10 s)
    now[0] = 110.1; assert step(0.005) == 0.005          # on time (1 epoch done, 0.1% of the time spent): the epoch's rate is kept
    now[0] = 110. + 90. * 0.75                           # behind: the rate of 75% of the training time (after start-up) = epoch 300,
    assert step(0.005) == cellpose_3_lr(400)[300] == 0.0025   # the first halving (from t0 it would be epoch 310: 0.00125)
    assert c['epochs_done'] == 3
    now[0] = 199.99; step(0.005)                         # just inside the budget: a step
    now[0] = 200.
    with pytest.raises(pc.OutOfTime): step(0.005)        # the budget is spent: stop
    assert c['epochs_done'] == 4
    monkeypatch.setattr(pc.ClockAdamW, 'clock', None); now[0] = 1e6; assert step(0.005) == 0.005   # off the clock: plain AdamW

def test_cellpose_train_on_clock(monkeypatch):
    "`train_on_clock` around a stand-in for Cellpose's `train_seg` loop: epochs, batches, the stop and the epochs it reports"
    import torch, peer_cellpose as pc
    now = [0.]; monkeypatch.setattr(pc, 'time', type('T', (), {'perf_counter': staticmethod(lambda: now[0])}))
    monkeypatch.setattr(torch.optim, 'AdamW', torch.optim.AdamW)
    seen = []
    def train_seg(n_epochs, train_data, s_per_batch, batch_size=8):   # train_seg's loop: the lr each epoch, a step each batch
        w = torch.nn.Parameter(torch.zeros(1)); opt = torch.optim.AdamW([w], lr=0.005)
        seen.append(type(opt))
        lr = pc.cellpose_lr(n_epochs)
        for e in range(n_epochs):
            for g in opt.param_groups: g['lr'] = lr[e]
            for k in range(0, len(train_data), batch_size):
                now[0] += s_per_batch; w.grad = torch.ones(1); opt.step()
    imgs = list(range(20))                               # 20 images: 3 batches an epoch
    s, done = pc.train_on_clock(train_seg, 50, None, len(imgs), train_data=imgs, s_per_batch=1.)
    assert (s, done) == (150., None) and seen[-1] is pc.ClockAdamW and pc.ClockAdamW.clock is None   # calibration: off the clock
    now[0] = 0.; s, done = pc.train_on_clock(train_seg, 50, 200., len(imgs), train_data=imgs, s_per_batch=1.)
    assert (s, done) == (150., None)                     # on time: every epoch, no stop
    now[0] = 0.; s, done = pc.train_on_clock(train_seg, 50, 100., len(imgs), train_data=imgs, s_per_batch=1.)
    assert done == 33 and s == 100. and pc.ClockAdamW.clock is None   # 1.5x slower than planned: 99 steps (the 100th raises) = 33 whole epochs, stopped at the budget

def test_tune_keeps_tuning_and_scored_images_apart():
    import realdata as rd, realdata_tune as rt   # tuned on Usiigaci's validation sets, scored on its test sets
    tr, va, te = rd.folds('usiigaci')['41-45']
    assert rt.TUNE == va and rt.TEST == te and not set(rt.TUNE) & set(rt.TEST)
    c = lambda tp, fp, fn, n: dict(tp=tp, fp=fp, fn=fn, cells=n)   # matches and objects of one image at one height
    rows = [dict(hs={0.05: c(8, 2, 2, 10), 0.1: c(5, 0, 5, 5)}), dict(hs={0.05: c(1, 9, 9, 10), 0.1: c(6, 1, 4, 7)})]
    assert rt.pooled(rows, 0.05) == pytest.approx(18 / 40) and rt.pooled(rows, 0.1) == pytest.approx(22 / 32)
    r = subprocess.run([sys.executable, str(ROOT/'bench/realdata_tune.py'), '--models', 'nope_dev_9'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and 'lc5-usiigaci_41-45_nope_dev_9' in r.stderr and 'not found' in r.stderr   # names the missing model and the fix
    from cellseg_nb.tune import TUNE_GRID
    from cellseg_nb.postprocess import DEFAULT_GRID
    g = rt.grids(); assert TUNE_GRID in g.values() and set(g['full']) == set(DEFAULT_GRID) and set(g['wide']['fg_threshold']) > set(DEFAULT_GRID['fg_threshold'])   # the product's search among them
    assert 0.0 in rt.CP_PAIRS['cellprob'] and 0.4 in rt.CP_PAIRS['flow']   # the peer's defaults are among its pairs (its untuned row)
    gt = np.zeros((20, 20), np.int32); gt[2:8, 2:8] = 1; gt[10:18, 10:18] = 2
    merged = (gt > 0).astype(np.int32)
    assert rt.match_counts(gt, gt) == dict(tp=2, fp=0, fn=0, cells=2) and rt.match_counts(gt, merged)['fn'] >= 1
    from cellseg_nb.postprocess import probs_from_labels, PostprocessParams
    s = rt.scored([probs_from_labels(gt)], [('a', None, gt)], PostprocessParams())   # perfect maps: every cell found, ranked first
    assert s['f1'] == 1.0 and s['ap'] > 0.9 and set(s) == {'f1', 'msa', 'ap'}
    assert rt.scored([probs_from_labels(gt * (gt == 1))], [('a', None, gt)], PostprocessParams())['f1'] == pytest.approx(2 / 3, abs=1e-4)   # a cell missed (scores kept to 4 places)

def test_cellpose_masks_scored_by_mean_probability():
    import peer_cellpose as pc   # how the bench scores Cellpose's cells for AP, on eval's masks and each tuned pair's
    lab = np.array([[0, 1, 1], [2, 2, 0]]); cp = np.array([[9., 0., 2.], [-2., 0., 5.]])
    sig = lambda x: 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(pc.mean_prob(lab, cp), [(sig(0.) + sig(2.)) / 2, (sig(-2.) + sig(0.)) / 2])   # background ignored
    assert pc.mean_prob(np.zeros((2, 3), int), cp).shape == (0,)
    with pytest.raises(ValueError, match='differ in size'): pc.mean_prob(lab, cp[:1])

def test_tune_report_pools_seeds_and_pairs_them(tmp_path, monkeypatch):
    import realdata as rd, realdata_tune as rt   # the seed table of the 15-minute models, from the kept results only
    sc = lambda f1, ap: dict(f1=f1, msa=f1 / 4, ap=ap)
    ours = lambda f1, ap: {'cellseg-tune': {'wide': dict(scored_default=sc(0.4, 0.1), scored_tuned=sc(f1, ap))}}
    cp = lambda f1, **k: {'cellpose-tune': dict(f1_untuned=0.1, f1_default=0.5, f1_tuned=f1, **k)}
    runs = {'ours_15min_0': ours(0.6, 0.2), 'ours_15min_1': ours(0.7, 0.3), 'ours[centre]_15min_0': ours(0.9, 0.9),   # another method: not pooled
            'cellpose[tuned]_15min_0': cp(0.55), 'cellpose[tuned]_15min_1': cp(0.5, scored_tuned=sc(0.5, 0.2))}
    (res := tmp_path/'tune.json').write_text(json.dumps(dict(runs=runs)))
    (rdres := tmp_path/'rd.json').write_text(json.dumps(dict(per_fold=[dict(protocol='lc5-usiigaci', method='ours', budget='15min', per_seed=[dict(seed=0, **sc(0.04, 0.01))])])))
    monkeypatch.setattr(rt, 'RESULTS', res); monkeypatch.setattr(rd, 'RESULTS', rdres)
    s = rt.report(); t = s['table']
    assert t['ours, `cellseg tune` (default search)']['f1']['mean'] == pytest.approx(0.65) and t['ours, `cellseg tune` (default search)']['seeds'] == [0, 1]
    assert t['Cellpose, thresholds tuned']['f1']['n'] == 2 and t['Cellpose, thresholds tuned']['ap']['n'] == 1   # seed 0 kept no AP
    assert t['ours, untuned (automatic size)']['f1']['mean'] == 0.04
    assert s['by_seed']['F1, ours tuned - Cellpose tuned'] == {0: 0.05, 1: 0.2} and s['by_seed']['AP, ours tuned / Cellpose tuned'] == {1: 1.5}
    assert 'summary_15min' in json.loads(res.read_text())

def test_fewer_images_subsets_and_report(tmp_path, monkeypatch, capsys):
    import realdata as rd, realdata_tune as rt   # how many annotated images `cellseg tune` needs: fixed subsets, pooled per size
    ss = rt.subsets()
    assert sorted(ss) == list(rt.KS) and all(len(v) == len(rt.TUNE) and len({frozenset(x) for x in v}) == len(v) for v in ss.values())   # 5 distinct sets per size
    for k, v in ss.items():
        assert all(len(x) == len(set(x)) == k for x in v) and all(sum(i in x for x in v) == k for i in range(len(rt.TUNE)))   # each image equally often
    assert len({rt.sub_key(x) for v in ss.values() for x in v}) == 15 and ss[2][4] == (4, 0) and rt.sub_key(ss[2][4]) == '4-0'
    with pytest.raises(ValueError, match='1..4'): rt.subsets(ks=(5,))   # all five is the cellseg-tune setting
    sc = lambda f1: dict(f1=f1, msa=f1 / 4, ap=f1 / 3)
    keys = [(k, rt.sub_key(x)) for k, v in ss.items() for x in v]
    ours_f1 = {key: 0.5 + 0.05 * k + 0.01 * j for j, (k, key) in enumerate(keys)}   # each subset its own score
    cp_f1 = {key: 0.6 + 0.001 * j for j, (k, key) in enumerate(keys)}
    few = {key: dict(k=k, image_diameter=40.0 + j, scored_default=sc(0.3), scored_tuned=sc(ours_f1[key]), warned=k == 1) for j, (k, key) in enumerate(keys)}
    cpf = lambda f: {key: dict(k=k, image_diameter=40.0 + j, scored_default=sc(f(key))) for j, (k, key) in enumerate(keys)}
    cp = lambda f, f5: {'cellpose-fewer': cpf(f), 'cellpose-tune': dict(f1_untuned=0.1, f1_default=f5, f1_tuned=f5, scored_default=sc(f5))}
    runs = {'ours_15min_3': {'fewer-images': few, 'cellseg-tune': {'wide': dict(scored_default=sc(0.4), scored_tuned=sc(0.64))}},
            'ours_15min_0': {'cellseg-tune': {'wide': dict(scored_default=sc(0.4), scored_tuned=sc(0.9))}},   # no subsets: not in this table
            'cellpose[tuned]_15min_3': cp(cp_f1.get, 0.57), 'cellpose[tuned]_15min_1': cp(lambda key: 0.0, 0.0)}   # seed 1: ours has no subsets there
    r = rt.report_fewer(runs); t = r['table']
    o, c = t['ours, `cellseg tune`'], t['Cellpose at their diameter, default thresholds']
    assert o[1]['n'] == 5 and o[1]['f1']['mean'] == pytest.approx(0.57, abs=1e-4) and o[5]['n'] == 1 and o[5]['f1']['mean'] == pytest.approx(0.64) and o[5]['seeds'] == [3]
    assert c[2]['seeds'] == [3] and c[2]['f1']['mean'] == pytest.approx(0.607, abs=1e-4) and c[5]['f1']['mean'] == pytest.approx(0.57)   # Cellpose's seed 1 left out
    gaps = r['f1_gap_same_images']
    assert gaps[1]['gaps'] == [round(ours_f1[key] - cp_f1[key], 4) for k, key in keys if k == 1] and gaps[5]['gaps'] == [0.07]   # paired subset by subset
    assert gaps[1]['ours_ahead'] == 0 and gaps[3]['ours_ahead'] == 5 and r['diameters_agree']
    assert r['warned_below_min_cells'] == {1: 5, 2: 0, 3: 0} and rt.report_fewer({'ours_15min_0': runs['ours_15min_0']}) == {}
    runs['cellpose[tuned]_15min_3']['cellpose-fewer']['0']['image_diameter'] = 99.0
    assert not rt.report_fewer(runs)['diameters_agree']   # the two sides given different sizes: flagged
    (res := tmp_path/'tune.json').write_text(json.dumps(dict(runs=runs)))   # and --report prints the table
    (rdres := tmp_path/'rd.json').write_text(json.dumps(dict(per_fold=[])))
    monkeypatch.setattr(rt, 'RESULTS', res); monkeypatch.setattr(rd, 'RESULTS', rdres)
    rt.report(); out = capsys.readouterr().out
    assert '| 1 | 0.570 ± 0.016 / AP 0.190 |' in out and 'ours, `cellseg tune` (seeds 3)' in out and 'different diameters' in out
    assert 'fewer_images' in json.loads(res.read_text())['summary_15min']

@needs_data
def test_tune_rescores_a_kept_peer_run(tmp_path, monkeypatch):
    import realdata as rd, realdata_tune as rt   # the reading side of --peer cellpose: a kept out.npz scored again, no training
    if shared_data('usiigaci-phase') is None: pytest.skip('needs ../shared/data/usiigaci-phase')
    monkeypatch.setattr(rd, 'OUT', tmp_path)
    with pytest.raises(SystemExit, match='not found'): rt.peer_cellpose(7, train=False)   # nothing kept: says so, trains nothing
    test, tune = rd.items_of('usiigaci', rt.TEST), rd.items_of('usiigaci', rt.TUNE)
    pairs = [(c, f) for c in rt.CP_PAIRS['cellprob'] for f in rt.CP_PAIRS['flow']]; k0 = pairs.index((1.0, 0.8))
    o = dict(info=json.dumps(dict(pairs=pairs, diameter=20.0, steps=1, train_s=1.0, budget_used=1.0, default_pair_as_eval=True)))
    for i, (_, _, g) in enumerate(test):   # eval's masks and one pair are perfect, the others find nothing
        o[f'labels_{i}'], o[f'scores_{i}'] = g, np.ones(int(g.max()))
        for k in range(len(pairs)): o[f'labels_{k}_{i}'] = g if k == k0 else np.zeros_like(g)
    for i, (_, _, g) in enumerate(tune):
        for k in range(len(pairs)): o[f'tlabels_{k}_{i}'] = g if k == k0 else np.zeros_like(g)
    (work := tmp_path/'work'/'lc5-usiigaci_41-45_cellpose[tuned]_15min_7').mkdir(parents=True)
    np.savez(work/'out.npz', **o)
    r = rt.peer_cellpose(7, train=False)['cellpose-tune']
    assert r['tuned_pair'] == (1.0, 0.8) and r['f1_tuned'] == 1.0 and r['f1_default'] == 0.0 and r['scored_untuned']['f1'] == 1.0
    assert 'scored_tuned' not in r   # this run kept no per-pair scores: no AP for its tuned masks
    for i, (_, _, g) in enumerate(test):
        for k in range(len(pairs)): o[f'labelsscores_{k}_{i}'] = np.ones(int(o[f'labels_{k}_{i}'].max()))
    np.savez(work/'out.npz', **o)
    r = rt.peer_cellpose(7, train=False)['cellpose-tune']
    assert r['scored_tuned']['f1'] == 1.0 and r['scored_tuned']['ap'] > 0.9 and r['scored_default']['f1'] == 0.0
    assert 'cellpose-fewer' not in rt.peer_cellpose(7, train=False)   # a run trained before the subsets
    from cellseg_nb.data.targets import median_diameter
    d = rt.subset_diameters(tune)   # what a training run passes Cellpose: each subset's own measured diameter
    assert len(d) == 15 and d['0'] == round(float(median_diameter([tune[0][2]])), 2) and d['3-4-0'] == round(float(median_diameter([tune[i][2] for i in (3, 4, 0)])), 2)
    info = json.loads(o['info']); info['diameters'] = {'0': 40.0, '1-2': 41.0}
    o['info'] = json.dumps(info)
    for i, (_, _, g) in enumerate(test):   # at subset 0's diameter every cell found, at 1-2's none
        o[f'sub_0_{i}'], o[f'subscores_0_{i}'] = g, np.ones(int(g.max()))
        o[f'sub_1-2_{i}'], o[f'subscores_1-2_{i}'] = np.zeros_like(g), np.ones(0)
    np.savez(work/'out.npz', **o)
    f = rt.peer_cellpose(7, train=False)['cellpose-fewer']
    assert f['0']['k'] == 1 and f['0']['scored_default']['f1'] == 1.0 and f['1-2']['k'] == 2 and f['1-2']['scored_default']['f1'] == 0.0 and f['1-2']['image_diameter'] == 41.0
    e = subprocess.run([sys.executable, str(ROOT/'bench/realdata_tune.py'), '--rescore'], capture_output=True, text=True, timeout=120)
    assert e.returncode == 2 and '--peer' in e.stderr   # --rescore alone is refused, not a full run

def test_twopass_fuse_keeps_the_better_scored_cells():
    # bench/realdata_twopass.py `fuse`: cells of two passes pooled by score; a cell more than half taken is dropped
    import realdata_twopass as tp
    a = np.zeros((20, 20), np.int32); a[:, :10] = 1; a[:, 10:] = 2     # the first pass: two halves
    b = np.zeros((20, 20), np.int32); b[:, 5:16] = 1                     # the second: one cell across them
    lab, sc = tp.fuse(a, [0.9, 0.2], b, [0.5])   # b's cell keeps 6 of its 11 columns; a's 2 then has 4 of 10 free: dropped
    assert sc == [0.9, 0.5] and (lab[:, :10] == 1).all() and (lab[:, 10:16] == 2).all() and (lab[:, 16:] == 0).all()
    lab, sc = tp.fuse(a, [0.1, 0.2], b, [0.5])   # b's cell first; a's 1 keeps exactly half (5 of 10 columns): kept
    assert sc == [0.5, 0.1] and (lab[:, 5:16] == 1).all() and (lab[:, :5] == 2).all() and (lab[:, 16:] == 0).all()

def test_twopass_summary_counts_a_split_once():
    import realdata_twopass as tp
    s = lambda f1: {v: dict(f1=f1 if v == 'first' else 0.5, ap=0.1) for v in tp.VARIANTS}
    runs = {'lc5-loio_BT474_C3_ours_15min_5': dict(scores=s(0.6)), 'lc5-lolo_Huh7_ours[fit]_dev_0': dict(scores=s(0.3)),
            'lc5-loio_Huh7_A10_ours[fit]_dev_0': dict(scores=s(0.3))}   # the same split as the held-out Huh7 model: counted once
    r = tp.summary(runs)
    assert r['first']['models'] == 2 and r['first']['f1_wins'] == 1 and r['first']['f1_losses'] == 1
    assert r['first']['f1_minus_product']['mean'] == pytest.approx(-0.05) and r['product']['f1_wins'] == 0
    del runs['lc5-lolo_Huh7_ours[fit]_dev_0']   # without its twin it counts
    assert tp.summary(runs)['first']['models'] == 2 and tp.summary(runs)['first']['f1_losses'] == 1

def test_told_pairs_the_recipes_of_a_split(capsys):
    import realdata_told as rt   # bench/realdata_told.py: the defaults and size_each_image, each without and with the true diameter
    sc = lambda auto, told: dict(auto=dict(f1=auto, ap=0.1), told=dict(f1=told, ap=0.2), train=dict(f1=auto - 0.1, ap=0.1))
    runs = {'lc5-lolo_BT474_ours_15min_0': dict(scores=sc(0.55, 0.50)), 'lc5-lolo_BT474_ours[each-z50-true-diameter]_15min_0': dict(scores=sc(0.4, 0.65)),
            'lc5-loio_BT474_C3_ours_15min_6': dict(scores=sc(0.42, 0.54)), 'lc5-loio_BT474_C3_ours[each-z50]_15min_6': dict(scores=sc(0.58, 0.52)),
            'lc5-lolo_Huh7_ours_15min_5': dict(scores=sc(0.48, 0.42))}   # no each model: only in the defaults' told - auto
    assert rt.split_of('lc5-loio_BT474_C3_ours[each-z50]_15min_6') == ('lc5-loio_BT474_C3 15min seed 6', 'each')
    assert rt.split_of('lc5-usiigaci_41-45_ours[control]_15min_0') == ('lc5-usiigaci_41-45 15min seed 0', 'ours') and rt.split_of('x_y_ours[ema]_dev_1')[1] == 'ours[ema]'
    pf = [dict(protocol='lc5-lolo', fold='BT474', budget='15min', method='cellpose[true-diameter]', per_seed=[dict(seed=0, f1=0.45, ap=0.15)]),
          dict(protocol='lc5-lolo', fold='BT474', budget='15min', method='cellpose', per_seed=[dict(seed=0, f1=0.9, ap=0.9)])]   # not told: left out
    peer = rt.cellpose_told(pf)
    assert peer == {'lc5-lolo_BT474 15min seed 0': dict(f1=0.45, ap=0.15)}
    s = rt.summary(runs, peer)
    assert s['defaults told - Cellpose told']['f1']['mean'] == pytest.approx(0.05) and s['defaults told - Cellpose told']['ap']['mean'] == pytest.approx(0.05)
    assert s['each told - Cellpose told']['f1']['mean'] == pytest.approx(0.20) and s['each told - Cellpose told']['splits'] == ['lc5-lolo_BT474 15min seed 0']
    assert 'defaults told - Cellpose told' not in rt.summary(runs, {})   # no told Cellpose run: no comparison
    usi = {**runs, 'lc5-usiigaci_41-45_ours[control]_15min_0': dict(scores=sc(0.04, 0.39))}
    s2 = rt.summary(usi, {**peer, 'lc5-usiigaci_41-45 15min seed 0': dict(f1=0.59, ap=0.1)})
    assert s2['defaults told - Cellpose told']['f1']['mean'] == pytest.approx((0.05 - 0.20) / 2)             # both microscopes
    assert s2['defaults told - Cellpose told (LIVECell)']['splits'] == ['lc5-lolo_BT474 15min seed 0']      # the training one only
    assert s['ours: told - auto']['f1']['n'] == 3 and s['ours: told - auto']['f1']['mean'] == pytest.approx((-0.05 + 0.12 - 0.06) / 3)
    tt = s['each told - defaults told']
    assert tt['f1']['mean'] == pytest.approx((0.15 - 0.02) / 2) and (tt['wins'], tt['losses']) == (1, 1) and len(tt['splits']) == 2
    assert s['each told - defaults auto']['f1']['mean'] == pytest.approx((0.10 + 0.10) / 2) and s['each told - defaults auto']['wins'] == 2
    assert s['each train - defaults auto']['f1']['mean'] == pytest.approx((-0.25 + 0.06) / 2) and s['ours: train - auto']['f1']['mean'] == pytest.approx(-0.1)
    rt.show(s); out = capsys.readouterr().out
    assert 'each told - defaults told: F1 +0.065' in out and 'each told - Cellpose told: F1 +0.200' in out and 'on 2 splits (wins 1, losses 1)' in out
    with pytest.raises(ValueError, match='expected <protocol>'): rt.split_of('not-a-model')

def test_twopass_adabn_leaves_the_model_alone():
    import torch, realdata_twopass as tp
    from cellseg_nb.models.unet import create_model
    torch.manual_seed(0)
    m = create_model('unet_test', pretrained=False).eval()
    bn = lambda mod: next(x for x in mod.modules() if isinstance(x, torch.nn.BatchNorm2d))
    before = bn(m).running_mean.clone()
    img = np.random.default_rng(0).normal(100, 20, (64, 64)).astype(np.float32)
    a = tp.adapted(m, img, 1.0)
    assert torch.equal(bn(m).running_mean, before) and not torch.equal(bn(a).running_mean, before)
    assert not any(x.training for x in a.modules()) and bn(a).momentum is None and int(bn(a).num_batches_tracked) == 4   # four flips, a cumulative mean
    assert torch.allclose(bn(tp.adapted(m, img * 10 + 5, 1.0)).running_mean, bn(a).running_mean, atol=1e-4)   # normalised as infer_maps does
    assert not torch.allclose(bn(tp.adapted(m, img, 2.0)).running_mean, bn(a).running_mean, atol=1e-4)        # at the pass's scale

def test_tune_diameter_scan_picks_on_the_tuning_images(monkeypatch):
    import realdata_tune as rt, cellseg_nb.infer as ci   # `diameter-scan`: (size, height) chosen on the tuning images, scored on the others
    c = lambda tp, n: dict(tp=tp, fp=n - tp, fn=10 - tp, cells=n)
    monkeypatch.setattr(ci, 'matched_scale', lambda m, d: d)   # the counts below see the told diameter
    def counts(m, img, g, d):
        f = round(d / 40, 2); best = f == 1.25 if img == 'tune' else f == 0.8   # tuning and scored images disagree on the size
        return dict(hs={h: c(9 if best and h == 0.1 else 5 if f == 1.0 and h == 0.2 else 4, 10) for h in rt.HS})
    monkeypatch.setattr(rt, 'counts', counts)
    r = rt.scan(None, [('a', 'tune', None)], [('b', 'test', None)], 40.0)
    assert (r['picked_factor'], r['picked_h']) == (1.25, 0.1) and r['f1_tuned'] == pytest.approx(0.4)   # picked on the tuning images ...
    assert (r['oracle_factor'], r['oracle_h'], r['f1_oracle']) == (0.8, 0.1, pytest.approx(0.9))          # ... not on the scored ones
    assert r['h_at_measured'] == 0.2 and r['f1_at_measured'] == pytest.approx(0.5) and set(r['by_factor']) == set(rt.SIZE_FACTORS)

def test_minscore_floor_drops_the_low_cells_and_picks_on_the_training_images():
    import realdata_minscore as rm   # bench/realdata_minscore.py: a floor on the cell score, chosen on the training images
    lab = np.array([[1, 1, 2], [3, 3, 2]]); sc = [0.5, 0.1, 0.3]
    (l2, s2), = rm.above([(lab, sc)], 0.3)
    assert (l2 == [[1, 1, 0], [3, 3, 0]]).all() and list(s2) == sc   # below the floor: background; at it: kept
    assert (rm.above([(lab, sc)], 0.0)[0][0] == lab).all()
    assert rm.pick({'0.0': 0.5, '0.1': 0.6, '0.2': 0.6}) == 0.1       # the best, the lowest on a tie
    t = lambda f1s: {str(f): dict(f1=x, ap=0.2) for f, x in zip(rm.FLOORS, f1s)}
    n = len(rm.FLOORS)
    runs = {'lc5-loio_BT474_C3_ours_15min_5': dict(test=t([0.5, 0.6] + [0.4] * (n - 2)), picked=0.1, oracle=0.1),
            'lc5-lolo_BT474_ours_15min_0': dict(test=t([0.5, 0.45] + [0.7] * (n - 2)), picked=0.1, oracle=0.15)}
    s = rm.summary(runs)
    assert s['picked']['f1_minus_product']['mean'] == pytest.approx(0.025) and (s['picked']['f1_wins'], s['picked']['f1_losses']) == (1, 1)
    assert s['oracle']['f1_minus_product']['mean'] == pytest.approx(0.15) and s['oracle']['f1_wins'] == 2 and s['0.1']['models'] == 2

def test_adabn_blend_mixes_the_statistics():
    import torch, realdata_adabn as ra, realdata_twopass as tp   # bench/realdata_adabn.py: a * the image's + (1 - a) * training's
    from cellseg_nb.models.unet import create_model
    torch.manual_seed(0)
    m = create_model('unet_test', pretrained=False).eval()
    img = np.random.default_rng(0).normal(100, 20, (64, 64)).astype(np.float32)
    own = tp.adapted(m, img, 1.0); bn = lambda mod: tp.batchnorms(mod)[0]
    before = bn(m).running_mean.clone(), bn(m).running_var.clone()
    for a in (0.0, 0.5, 1.0):
        b = ra.blended(m, own, a)
        for k, ref in zip(('running_mean', 'running_var'), before):
            assert torch.allclose(getattr(bn(b), k), a * getattr(bn(own), k) + (1 - a) * ref, atol=1e-6)
    assert torch.equal(bn(m).running_mean, before[0]) and not any(x.training for x in ra.blended(m, own, 0.5).modules())   # the model is left alone
    f1 = {0.0: 0.5, 0.25: 0.502, 0.5: 0.55, 1.0: 0.4}
    s = ra.summary({'lc5-lolo_BT474_ours_15min_0': dict(scores={str(a): dict(f1=f1[a], ap=0.2) for a in ra.BLENDS})})
    assert s['1.0']['f1_minus_product']['mean'] == pytest.approx(-0.1) and s['1.0']['f1_losses'] == 1
    assert (s['0.25']['f1_wins'], s['0.25']['f1_losses']) == (0, 0) and s['0.5']['f1_wins'] == 1 and s['0.5']['models'] == 1

def test_linetune_searches_and_report(tmp_path, monkeypatch, capsys):
    import realdata_linetune as rl   # bench/realdata_linetune.py: `cellseg tune` on one image of the held-out line, with and without the floor
    from cellseg_nb.tune import TUNE_GRID
    s = rl.searches()
    assert s['wide'] == TUNE_GRID and 'min_score' not in TUNE_GRID and s['wide+floor'] == {**TUNE_GRID, 'min_score': rl.FLOORS}   # the floor is not in the default search
    for line, ds in rl.DIRECTIONS.items():   # never scored where tuned; both images of the held-out line, each way
        assert all(tu != te and tu.startswith(line) and te.startswith(line) for tu, te in ds) and {tu for tu, _ in ds} == {te for _, te in ds}
    import realdata_twopass as tp
    monkeypatch.setattr(tp, 'kept_model', lambda name: ('lc5-lolo', 'Huh7', None))   # a fold with one image of its line: nothing to tune apart
    with pytest.raises(ValueError, match='leave-one-line-out model of a line with two images'): rl.run_model('lc5-lolo_Huh7_ours_15min_5')
    sc = lambda f1, ap: dict(f1=f1, msa=0.1, ap=ap)
    one = lambda f0, f1: {'wide': dict(chosen={}, scored_default=sc(0.5, 0.2), scored_tuned=sc(f0, 0.2), scored_tuned_auto=sc(f0, 0.2)),
                          'wide+floor': dict(chosen={'min_score': 0.2}, scored_default=sc(0.5, 0.2), scored_tuned=sc(f1, 0.1), scored_tuned_auto=sc(f1, 0.1)),
                          'untuned_auto': sc(0.55, 0.25)}
    res = tmp_path/'linetune.json'
    res.write_text(json.dumps({'runs': {'lc5-lolo_BT474_ours_15min_0': {'BT474_B3->BT474_C3': one(0.5, 0.6), 'BT474_C3->BT474_B3': one(0.6, 0.6), 'when': 'x'}}}))
    monkeypatch.setattr(rl, 'RESULTS', res); monkeypatch.setattr(rl, 'untuned', lambda name, scored: None)
    out = rl.report()
    g = out['BT474']['floor_gain']
    assert g['f1']['mean'] == pytest.approx(0.05) and g['f1']['n'] == 2 and g['ap']['mean'] == pytest.approx(-0.1)   # paired, per direction
    assert out['BT474']['means']['tuned_floor']['f1']['mean'] == pytest.approx(0.6) and 'usiigaci' not in out and 'MCF7' not in out
