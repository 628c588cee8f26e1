"""One inference engine (issue 12): `cellseg evaluate MODEL` scores exactly what `cellseg predict MODEL` writes, and a run
reports the score of its best model's predictions.

A tiny model trained for a few steps on synthetic images wider than 1.5 tiles (so prediction tiles them), scored
two ways with every option at its default: by `cellseg evaluate MODEL`, and by `cellseg evaluate --predictions`
on the `predictions.json` that `cellseg predict MODEL --coco ...` wrote. The numbers must be the same. CPU, seconds.
"""
import contextlib, io, json, warnings
from pathlib import Path
import numpy as np
import pytest

torch = pytest.importorskip('torch')

def _cli(fn, argv):
    "Run a `*_cli` in process: (exit status, stdout, stderr)"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        rc = fn(list(map(str, argv)))
    return rc, out.getvalue(), err.getvalue()

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "Synthetic data (200x800 images: two 512 px tiles across) and a `unet_test` run trained for a few steps, validated on the test images"
    from cellseg_nb.data.synthset import make_synthetic_livecell
    from cellseg_nb.train import train_cli
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp('consistency')
    d = make_synthetic_livecell(root/'data', n_images=6, seed=0, size=(200, 800), splits='train=0.5,test=0.5', progress=False)
    rc, out, err = _cli(train_cli, ['--out', root/'run', '--images', d['images']['train'], '--annotations', d['annotations']['train'],
                                    '--val-annotations', d['annotations']['test'], '--val-images', d['images']['test'], '--config', 'unet_test', '--max-steps', '60', '--crop', '96', '--lr', '1e-2', '--schedule', 'constant',
                                    '--batch-size', '4', '--workers', '0', '--augment', 'none', '--seed', '0'])
    assert rc == 0, err[-800:]
    return root, d

def _scores(report):
    "Every number of an evaluation.json: object scores (pooled, mean, per image, per IoU threshold), COCO AP, cell types, per group"
    return {k: v for k, v in report.items() if k not in ('kind', 'params')}   # what was scored, and a model's thresholds

def test_evaluate_model_equals_scoring_predict_outputs(run):
    from cellseg_nb.evaluate import evaluate_cli
    from cellseg_nb.predict import predict_cli
    root, d = run
    ann, imgs = d['annotations']['test'], d['images']['test']
    rc, out, err = _cli(evaluate_cli, [root/'run', '--annotations', ann, '--images', imgs, '--out', root/'ev_model', '--no-figures'])
    assert rc == 0, err[-800:]
    rc, out, err = _cli(predict_cli, [root/'run', imgs, '--coco', ann, '--out', root/'pred', '--quiet'])
    assert rc == 0, err[-800:]
    rc, out, err = _cli(evaluate_cli, ['--predictions', root/'pred'/'predictions.json', '--annotations', ann, '--images', imgs,
                                       '--out', root/'ev_pred', '--no-figures'])
    assert rc == 0, err[-800:]
    a = json.loads((root/'ev_model'/'evaluation.json').read_text()); b = json.loads((root/'ev_pred'/'evaluation.json').read_text())
    assert a['summary']['n_pred'] > 0, 'the model finds no cells: the comparison would prove nothing'
    assert a['cell_type'] is not None and a['cell_type']['n'] > 0, 'no cell types scored: the comparison would miss them'
    assert _scores(a) == _scores(b), 'the score `cellseg evaluate MODEL` reports is not the score of what `cellseg predict MODEL` writes'

def test_run_reports_the_score_of_its_predictions(run):
    "The score a run reports (validation, thresholds tuned on it) is what `cellseg evaluate` gives its best model on those images"
    root, d = run
    summary = json.loads((root/'run'/'summary.json').read_text())
    from cellseg_nb.evaluate import evaluate
    b = evaluate(root/'run', d['annotations']['test'], images_root=d['images']['test'], figures=False, progress=False)
    assert summary['tuned_score'] == b['summary']['pooled']['f1@0.5'], (summary['tuned_score'], b['summary']['pooled']['f1@0.5'])
