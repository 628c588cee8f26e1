"""`bench/realdata_sizemodel.py`: the style size model's ridge and its penalty choice on made-up styles (the runs themselves need kept models: bench only)."""
import sys
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'bench'))
import realdata_sizemodel as S

def test_ridge_recovers_a_linear_size():
    rng = np.random.default_rng(0); X = rng.normal(size=(200, 5)); w = np.array([0.5, -1.0, 0.0, 2.0, 0.3])
    y = X @ w + 0.7
    assert np.allclose(S.ridge(X, y, 1e-6)(X), y, atol=1e-3)          # a tiny penalty fits it
    assert np.abs(S.ridge(X, y, 100.0)(X) - y.mean()).max() < 0.2      # a huge one predicts the mean

def test_penalty_is_chosen_on_held_out_images():
    rng = np.random.default_rng(1); g = np.repeat(np.arange(4), 30)
    X = rng.normal(size=(120, 3)); y = X[:, 0] + 0.01 * rng.normal(size=120)   # the size follows the style on every image
    _, l2, rmse = S.fit(X, y, g); assert l2 == min(S.L2S) and rmse < 0.05
    Xn = rng.normal(size=(120, 40)); yn = g.astype(float)                       # each image its own size, the style says nothing
    _, l2n, rmsen = S.fit(Xn, yn, g); assert l2n >= 1.0 and rmsen > 1.0   # a strong penalty, and the error shows it

def test_estimates_read_the_grid():
    r = dict(s0=1.5, true_scale=1.2, grid={str(f): dict(f1=f, cells=1, rematch=None) for f in S.GRID}, styles=[[0.0]] * 4,
             product=dict(scale=1.3, f1=0.6), iter2=dict(scale=1.2, f1=0.65), true=dict(scale=1.2, f1=0.7))
    e = S.estimates(r, lambda x: np.full(len(x), np.log(2.0)))   # the size model: cells twice the target, so half the scale
    assert e['style'] == (0.75, 0.5) and e['style+refine'] == (0.75, 0.5) and e['none'] == (1.5, 1.0)
