"""`bench/celltypes.py`: the issue-16 benchmark's splits and scores on made-up cells (the runs themselves train models: bench only)."""
import sys
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'bench'))
import celltypes
from cellseg_nb.metrics import UNKNOWN

def test_pieces_cover_the_image_once():
    img = np.arange(520 * 704).reshape(520, 704); p = celltypes.pieces(img, img)
    assert p['train'][0].shape == (520, 352) and p['val'][0].shape == p['test'][0].shape == (260, 352)
    got = np.sort(np.concatenate([v[0].ravel() for v in p.values()]))
    assert (got == img.ravel()).all()   # train, validation and test share no pixel

def test_scores_on_made_up_cells():
    # 4 known cells (types 0, 0, 1, 1; the last typed wrong, 90% sure), 2 cells of a held-out line, 2 Usiigaci cells
    p0 = np.array([0.95, 0.6, 0.2, 0.9, 0.55, 0.5, 0.6, 0.99])
    c = dict(p=np.stack([p0, 1 - p0], 1), true=np.array([0, 0, 1, 1, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN]),
             domain=np.array(['known'] * 4 + ['lolo'] * 2 + ['usiigaci'] * 2), cls=np.tile([[0.7, 0.3]], (8, 1)))
    s = celltypes.scores(c, 1.0, 0.0, ['a', 'b'])
    assert s['accuracy_closed'] == s['accuracy_open'] == 0.75 and s['accuracy_cls_head'] == 0.5
    assert s['auroc_lolo'] == 1.0 and s['flagged_lolo'] == 0.0        # the held-out line's cells are the least sure
    assert s['auroc_usiigaci'] == 3.5 / 8                              # one Usiigaci cell is surer than every known one, one ties
    o = celltypes.scores(c, 1.0, 0.62, ['a', 'b'])                     # open set: below 0.62 is unknown
    assert o['flagged_lolo'] == 1.0 and o['flagged_usiigaci'] == 0.5 and o['accuracy_open'] == 0.5   # a right known cell (0.6) is lost
    assert celltypes.scores(c, 2.0, 0.0, ['a', 'b'])['ece'] != s['ece']   # the temperature moves the calibration

def test_accuracy_where_the_target_is_set(tmp_path):
    # the accuracy target counts only types with >= 2 training images: here type 'b' (cells 3 and 4: one right, one wrong)
    p0 = np.array([0.95, 0.6, 0.2, 0.9, 0.55, 0.5, 0.6, 0.99])
    c = dict(p=np.stack([p0, 1 - p0], 1), true=np.array([0, 0, 1, 1, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN]),
             domain=np.array(['known'] * 4 + ['lolo'] * 2 + ['usiigaci'] * 2), cls=np.tile([[0.7, 0.3]], (8, 1)))
    s = celltypes.scores(c, 1.0, 0.0, ['a', 'b'], counts=[1, 2])
    assert s['accuracy_2plus'] == 0.5 and s['accuracy_closed'] == 0.75 and s['ece_2plus'] != s['ece']
    assert np.isnan(celltypes.scores(c, 1.0, 0.0, ['a', 'b'])['accuracy_2plus'])   # no counts: no such type
    assert celltypes.by_type(c, ['a', 'b']) == {'a': 1.0, 'b': 0.5}
    (tmp_path/'data/train').mkdir(parents=True)
    for n in ('Huh7_A10_train', 'MCF7_F4_train', 'MCF7_G4_train', 'MCF7_G4_train_masks'): (tmp_path/'data/train'/f'{n}.tif').touch()
    assert celltypes.train_counts(tmp_path, ['Huh7', 'MCF7', 'BT474']) == [1, 2, 0]   # masks are not images

def test_scores_by_novelty():
    # the same cells with a novelty: the open set and the AUROC follow it where the model has prototypes
    p0 = np.array([0.95, 0.6, 0.2, 0.9, 0.55, 0.5, 0.6, 0.99])
    c = dict(p=np.stack([p0, 1 - p0], 1), true=np.array([0, 0, 1, 1, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN]), nov=np.array([1., 2, 3, 9, 8, 10, 20, 30]),
             domain=np.array(['known'] * 4 + ['lolo'] * 2 + ['usiigaci'] * 2), cls=np.tile([[0.7, 0.3]], (8, 1)))
    s = celltypes.scores(c, 1.0, 0.0, ['a', 'b'], novel_above=5.0)
    assert s['auroc_usiigaci'] == s['auroc_usiigaci_novelty'] == 1.0 and s['auroc_usiigaci_prob'] == 3.5 / 8
    assert s['auroc_lolo'] == 7 / 8                                    # one known cell (9) is more novel than one held-out cell (8)
    assert s['flagged_lolo'] == s['flagged_usiigaci'] == 1.0 and s['accuracy_open'] == 0.75   # the flagged known cell (9) was typed wrong anyway
    assert celltypes.scores(c, 1.0, 0.0, ['a', 'b'])['flagged_usiigaci'] == 0.0   # without the rule nothing is flagged

def test_synth_open_fold(tmp_path):
    # synth-open: the held-out morphology never reaches train/val; mixed test images carry a type per label
    data, tests = celltypes.synth_fold_data('spindle', tmp_path)
    names = [p.name for p in (tmp_path/'train').glob('*.tif')] + [p.name for p in (tmp_path/'val').glob('*.tif')]
    assert {n.split('_')[0] for n in names} == {'round', 'spread'} and len(names) == 2 * 2 * (celltypes.SYNTH_N['train'] + celltypes.SYNTH_N['val'])
    mixed = [t for t in tests if t[0].startswith('mixed')]
    assert len(mixed) == celltypes.SYNTH_N['mixed'] and all(len(t[3]) == t[2].max() for t in mixed)
    assert 'spindle' in set(mixed[0][3]) | set(mixed[1][3])
    ln = celltypes.lines_of(mixed[0][3], [1, 3])
    assert list(ln) == [mixed[0][3][0], mixed[0][3][2]] and list(celltypes.lines_of('round', [4, 9])) == ['round', 'round']
    again = celltypes.synth_fold_data('spindle', tmp_path/'again')[1]
    assert all((a[1] == b[1]).all() for a, b in zip(tests, again))   # the same images for every seed

def made_up_run(fold, seed, rng):
    "A run record and its matched cells, as `record` writes them (scores of made-up cells)"
    p0 = rng.uniform(0.5, 1, 40); true = rng.integers(0, 2, 40); k = np.where(rng.uniform(size=40) < 0.8, true, 1 - true)
    p = np.where(k[:, None] == np.arange(2), p0[:, None], 1 - p0[:, None])
    c = dict(p=p, true=np.r_[true[:30], np.full(10, UNKNOWN)], domain=np.array(['known'] * 30 + ['lolo'] * 5 + ['usiigaci'] * 5),
             cls=np.tile([[0.6, 0.4]], (40, 1)), nov=rng.uniform(0, 1, 40))
    r = dict(fold=fold, seed=seed, class_names=['a', 'b'], temperature=1.5, unknown_below=0.0, novel_above=0.5, before=celltypes.scores(c, 1.0, 0.0, ['a', 'b']),
             after=celltypes.scores(c, 1.5, 0.0, ['a', 'b'], 0.5), reliability=celltypes.run_tables(c, 1.5))
    return r, c

def test_pooled_tables_are_exact():
    # pooling the runs' tables gives the table of all their cells at once (so seeds of different sessions pool exactly)
    from cellseg_nb.metrics import reliability_table
    from cellseg_nb.postprocess import soften
    rng = np.random.default_rng(0); (r1, c1), (r2, c2) = made_up_run('BT474', 0, rng), made_up_run('BT474', 1, rng)
    q = soften(np.r_[c1['p'][:30], c2['p'][:30]], 1.5); ok = q.argmax(1) == np.r_[c1['true'][:30], c2['true'][:30]]
    want = reliability_table(q.max(1), ok)
    got = celltypes.pool_tables([r1['reliability']['after'], r2['reliability']['after']])
    assert [g['n'] for g in got] == list(want.n) and sum(g['n'] for g in got) == 60
    assert np.allclose([g['accuracy'] for g in got], want.accuracy) and np.allclose([g['confidence'] for g in got], want.confidence)

def test_report_keeps_earlier_sessions_runs(tmp_path, monkeypatch):
    # an earlier session left 2 runs in the results file (no per-run tables, its bench/out gone); this session adds one
    import json
    monkeypatch.setattr(celltypes, 'OUT', tmp_path); monkeypatch.setattr(celltypes, 'RESULTS', tmp_path/'res.json')
    rng = np.random.default_rng(1); old = [made_up_run(f, 0, rng) for f in ('BT474', 'MCF7')]
    legacy = [{k: v for k, v in r.items() if k != 'reliability'} for r, _ in old]
    block = {w: celltypes.pool_tables([r['reliability'][w] for r, _ in old]) for w in ('before', 'after')}
    (tmp_path/'res.json').write_text(json.dumps(dict(runs=legacy, reliability=block)))
    new, c = made_up_run('BT474', 2, rng); new.pop('reliability')   # its cells are kept: the report makes its tables
    (tmp_path/'cells').mkdir(); np.savez(tmp_path/'cells'/'BT474_2.npz', **c)
    (tmp_path/'runs.jsonl').write_text(json.dumps(new) + '\n')
    out = celltypes.report()
    assert sorted(celltypes.key(r) for r in out['runs']) == [('BT474', 0), ('BT474', 2), ('MCF7', 0)]
    accs = [r['after']['accuracy_closed'] for r, _ in old] + [new['after']['accuracy_closed']]
    assert np.isclose(out['pooled']['after']['accuracy_closed']['mean'], np.mean(accs))
    assert sum(t['n'] for t in out['reliability']['after']) == 90 and len(out['reliability_runs']) == 3
    kept = next(r for r in out['runs'] if celltypes.key(r) == ('BT474', 2))   # scored again from its kept cells: it gains the newer scores
    assert kept['accuracy_by_type'] == celltypes.by_type(c, ['a', 'b']) and kept['after']['accuracy_closed'] == new['after']['accuracy_closed']
    again = celltypes.report()   # the next report (or session) carries the block on, without counting a run twice
    assert sum(t['n'] for t in again['reliability']['after']) == 90 and len(again['runs']) == 3
    (tmp_path/'res.json').write_text(json.dumps(dict(runs=legacy)))   # no tables for the earlier runs: left out of the diagram, said so
    assert sum(t['n'] for t in celltypes.report()['reliability']['after']) == 30
