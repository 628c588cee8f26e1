"""`bench/celltypes_lda.py`: the prototype classifier of the issue-16 screen on made-up features (the runs themselves need kept models: bench only)."""
import sys
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'bench'))
import celltypes_lda as L
from cellseg_nb.postprocess import fit_prototypes

def _blobs(n=60, sep=4.0, seed=0):
    rng = np.random.default_rng(seed); t = np.arange(n) % 2
    return rng.normal(size=(n, 3)) + sep * t[:, None] * np.array([1.0, 0, 0]), t

def test_lda_probs_follow_the_nearest_prototype():
    e, t = _blobs(); q = L.lda_probs(e, *fit_prototypes(e, t))
    assert np.allclose(q.sum(1), 1) and (q.argmax(1) == t).mean() > 0.95
    far, _ = _blobs(sep=0.0)                                         # no separation: no better than chance
    assert (L.lda_probs(far, *fit_prototypes(far, t)).argmax(1) == t).mean() < 0.75

def test_crossfit_scores_cells_the_prototypes_did_not_see():
    e, t = _blobs(n=40, sep=0.0, seed=1)
    own = (L.lda_probs(e, *fit_prototypes(e, t)).argmax(1) == t).mean()
    held = (L.crossfit(e, t).argmax(1) == t).mean()
    assert held < own                                                # fitted on its own cells, pure noise looks learnt

def test_fuse_and_score():
    a, b = np.array([[0.9, 0.1], [0.4, 0.6]]), np.array([[0.5, 0.5], [0.9, 0.1]])
    f = L.fuse(a, b); assert np.allclose(f.sum(1), 1) and np.allclose(f[0], [0.9, 0.1]) and f[1].argmax() == 0
    s = L.score(a, np.array([0, 1]), a, np.array([0, 0]), np.array([True, False]))
    assert s['acc'] == 0.5 and s['acc_2plus'] == 1.0 and s['T'] > 0
