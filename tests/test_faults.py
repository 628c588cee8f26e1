"""Fault injection: bad pixels, broken files, interrupted and parallel runs, untrusted run folders (issue 13).

Each case is named after its fault. Every one failed (wrong result with exit 0, or an unclear error) on the code
before the fix. CPU-fast: the tiny `unet_test` model, small images. The full-disk cases need a small tmpfs they can
mount (root); they are skipped otherwise.
"""
import contextlib, io, json, os, random, signal, subprocess, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
import pytest

torch = pytest.importorskip('torch')
tifffile = pytest.importorskip('tifffile')

# `cellseg predict` in a subprocess; CELLSEG_TEST_SLOW=s sleeps s seconds before each model pass (test instrumentation only),
# so a kill or a second run lands in the middle of a run; CELLSEG_TEST_HOLD=file: once the run has written an image's labels,
# each pass also waits (at most 600 s) until `file` exists, so a second run surely starts before this one ends, however
# loaded the machine
PREDICT = r'''
import glob, os, sys, time
import cellseg_nb.predict as P
slow, hold = float(os.environ.get('CELLSEG_TEST_SLOW', '0')), os.environ.get('CELLSEG_TEST_HOLD')
if slow:
    _maps = P.infer_maps   # the model's pass over each image (predict_files' pipeline calls it once or twice per image)
    written = lambda: glob.glob(os.path.join(sys.argv[sys.argv.index('--out') + 1], '*_labels.tif'))
    def infer_maps(*a, **k):
        time.sleep(slow); t0 = time.time()
        while hold and not os.path.exists(hold) and written() and time.time() - t0 < 600: time.sleep(0.05)
        return _maps(*a, **k)
    P.infer_maps = infer_maps
sys.exit(P.predict_cli(sys.argv[1:]))
'''

def _predict_proc(args, slow=0.0, hold=None):
    env = {**os.environ, 'CELLSEG_TEST_SLOW': str(slow), 'OMP_NUM_THREADS': '1', **({'CELLSEG_TEST_HOLD': str(hold)} if hold else {})}
    return subprocess.Popen([sys.executable, '-c', PREDICT, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=Path(args[0]).parent)   # not the repo: `python -c` imports from its cwd

def _cli(fn, argv):
    "Run a `*_cli` in process: (exit status, stdout, stderr)"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try: rc = fn(list(map(str, argv)))
        except SystemExit as e: rc = e.code   # argparse: a bad option
    return rc, out.getvalue(), err.getvalue()

def _predict(argv): from cellseg_nb.predict import predict_cli; return _cli(predict_cli, argv)

@pytest.fixture(scope='module')
def model(tmp_path_factory):
    from cellseg_nb.models.unet import create_model, save_model
    from cellseg_nb.core import set_seed
    set_seed(0); d = tmp_path_factory.mktemp('model')/'model'
    save_model(create_model('unet_test', pretrained=False), d)
    return d

def _images(d, n, shape=(64, 80), seed=0):
    d = Path(d); d.mkdir(parents=True, exist_ok=True); rng = np.random.default_rng(seed)
    for i in range(n): tifffile.imwrite(d/f'img{i:02d}.tif', rng.integers(0, 255, shape, dtype=np.uint8))
    return d

TILE = ['--tile', '64', '--overlap', '16', '--quiet']

def _outputs(out):
    "Every output file of a predict folder as comparable content (decoded label images, bytes of the rest)"
    res = {}
    for p in sorted(Path(out).iterdir()):
        if p.name == '.cellseg-predict.lock': continue
        res[p.name] = tifffile.imread(p).tobytes() if p.suffix == '.tif' else p.read_bytes()
    return res

# ---------------------------------------------------------------------------------------------------- bad pixels
def test_nan_inf_pixels_are_filled_and_reported(model, tmp_path):
    from cellseg_nb.core import normalize_image
    img = np.random.default_rng(0).random((64, 80)).astype(np.float32)
    bad = img.copy(); bad[:3, :4] = np.nan; bad[10, 10] = np.inf
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); n = normalize_image(bad)
    assert np.isfinite(n).all(), 'one NaN pixel made the whole normalised image NaN'
    assert any('13 of 5120 pixels' in str(x.message) for x in w)
    d = tmp_path/'in'; d.mkdir(); tifffile.imwrite(d/'ratio.tif', bad); tifffile.imwrite(d/'clean.tif', img)
    rc, out, err = _predict([model, d, '--out', tmp_path/'out', *TILE])
    assert rc == 0, err
    assert 'ratio.tif: 13 of 5120 pixels are NaN/Inf' in err
    # the NaN image is segmented like the clean one (not an all-NaN map with 0 cells)
    la, lb = tifffile.imread(tmp_path/'out'/'ratio_labels.tif'), tifffile.imread(tmp_path/'out'/'clean_labels.tif')
    assert (la > 0).sum() > 0.5 * (lb > 0).sum()

def test_all_nan_image_is_a_named_error(model, tmp_path):
    from cellseg_nb.core import normalize_image
    with pytest.raises(ValueError, match='every pixel'): normalize_image(np.full((8, 8), np.nan, np.float32))
    d = _images(tmp_path/'in', 1); tifffile.imwrite(d/'blank.tif', np.full((64, 80), np.nan, np.float32))
    rc, out, err = _predict([model, d, '--out', tmp_path/'out', *TILE])
    assert rc == 1 and 'blank.tif: every pixel is NaN or Inf' in err, err
    assert (tmp_path/'out'/'img00_labels.tif').exists()

def test_truncated_tiff_among_good_ones(model, tmp_path):
    d = _images(tmp_path/'in', 3)
    (d/'cut.tif').write_bytes((d/'img00.tif').read_bytes()[:8])   # header only: tifffile finds 0 pages
    rc, out, err = _predict([model, d, '--out', tmp_path/'out', *TILE])
    assert rc == 1, 'a truncated TIFF was dropped silently with exit 0'
    assert 'cut.tif' in err and 'truncated' in err, err
    assert [i['name'] for i in json.loads((tmp_path/'out'/'images.json').read_text())] == ['img00', 'img01', 'img02']

def test_tiny_image_5x7(model, tmp_path):
    d = tmp_path/'in'; d.mkdir()
    tifffile.imwrite(d/'tiny.tif', np.ones((5, 7), np.uint8)); tifffile.imwrite(d/'thin.tif', np.ones((9, 300), np.uint8))
    rc, out, err = _predict([model, d, '--out', tmp_path/'out', '--quiet'])   # default --tile / --overlap
    assert 'overlap (64)' not in err, 'blamed options the user never set'
    assert 'tiny.tif' in err and 'too small to segment' in err, err
    assert (tmp_path/'out'/'thin_labels.tif').exists(), 'a 9 px high image is segmented with the tile adapted to it'

# ---------------------------------------------------------------------------------------- interrupted runs
def test_skip_existing_redoes_missing_overlays_rois_and_cleans_tmp(model, tmp_path):
    d = _images(tmp_path/'in', 3)
    args = [model, d, '--out', tmp_path/'out', '--fiji-rois', *TILE]
    assert _predict(args)[0] == 0
    ref = _outputs(tmp_path/'out')
    # a run killed between an image's files, or by a full disk: overlay / ROI zip missing, temporaries left
    (tmp_path/'out'/'img01_overlay.png').unlink(); (tmp_path/'out'/'img02_rois.zip').unlink()
    (tmp_path/'out'/'.img01_overlay.png.abc123.tmp').write_bytes(b'half'); (tmp_path/'out'/'.img02_rois.tmp.zip').write_bytes(b'half')
    rc, out, err = _predict(args + ['--skip-existing'])
    assert rc == 0, err
    assert _outputs(tmp_path/'out') == ref, 'a resumed run must end with every output of an uninterrupted one, and no temporaries'

def test_kill9_at_random_points_then_skip_existing(model, tmp_path):
    d = _images(tmp_path/'in', 8)
    args = [model, d, '--out', tmp_path/'a', '--fiji-rois', *TILE]
    a = _predict_proc(args); _, err = a.communicate(timeout=600); assert a.returncode == 0, err
    ref = _outputs(tmp_path/'a')
    rng = random.Random(13); b_args = [model, d, '--out', tmp_path/'b', '--fiji-rois', *TILE, '--skip-existing']
    for attempt in range(3):
        n0 = len(list((tmp_path/'b').glob('*_labels.tif'))); b = _predict_proc(b_args, slow=0.15); t0 = time.time()
        while len(list((tmp_path/'b').glob('*_labels.tif'))) <= n0 and b.poll() is None and time.time() - t0 < 300: time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.6))   # a random point inside the run: predicting, or writing one of an image's files
        if b.poll() is None: os.kill(b.pid, signal.SIGKILL)
        b.communicate(timeout=60)
    c = _predict_proc(b_args); _, err = c.communicate(timeout=600)
    assert c.returncode == 0, err
    assert _outputs(tmp_path/'b') == ref

# ----------------------------------------------------------------------------------------------- parallel runs
def test_two_concurrent_predicts_into_one_out(model, tmp_path):
    d1, d2 = _images(tmp_path/'in1', 6, seed=1), _images(tmp_path/'in2', 6, seed=2)
    for i, f in enumerate(sorted(d2.iterdir())): f.rename(d2/f'other{i:02d}.tif')
    out = tmp_path/'out'
    go = tmp_path/'go'   # the first run holds after its first image until the second one has ended
    a = _predict_proc([model, d1, '--out', out, *TILE], slow=2.0, hold=go)
    t0 = time.time()
    while not list(out.glob('*_labels.tif')) and time.time() - t0 < 300: time.sleep(0.02)
    b = _predict_proc([model, d2, '--out', out, *TILE])
    _, eb = b.communicate(timeout=600)
    assert a.poll() is None, 'the first run ended before the second one: the runs did not overlap, the test proves nothing'
    go.touch()
    _, ea = a.communicate(timeout=600)
    assert a.returncode == 0, ea
    n_res = len(json.loads((out/'predictions.json').read_text()))
    names = [i['name'] for i in json.loads((out/'images.json').read_text())]
    n_cells = lambda ns: sum(len(pd.read_csv(out/f'{n}_cells.csv')) for n in ns)
    if b.returncode == 0:   # both worked: every image of both runs must be in the results
        assert len(names) == 12 and n_res == n_cells(names), f'predictions.json holds {n_res} of {n_cells(names)} cells'
    else:                   # or the second refused, clearly, and the first run's results are whole
        assert b.returncode == 2 and 'another `cellseg predict`' in eb and '--out' in eb, eb
        assert names == [f'img{i:02d}' for i in range(6)] and n_res == n_cells(names), f'predictions.json holds {n_res} of {n_cells(names)} cells'
        assert not list(out.glob('other*'))

# ---------------------------------------------------------------------------------------------------- full disk
@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path/'tmpfs'; mnt.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=160k', 'tmpfs', str(mnt)], capture_output=True)
    if r.returncode != 0: pytest.skip(f'cannot mount a tmpfs here ({r.stderr.decode().strip()})')
    try: yield mnt
    finally: subprocess.run(['umount', '-l', str(mnt)])

def test_disk_full_while_predicting(model, tmp_path, small_tmpfs):
    d = _images(tmp_path/'in', 12, shape=(128, 160))
    args = [model, d, '--out', small_tmpfs/'out', '--fiji-rois', *TILE]
    rc, out, err = _predict(args)
    assert rc == 2 and 'disk full' in err and '--skip-existing' in err, (rc, err)
    o = small_tmpfs/'out'
    assert not list(o.glob('.*.tmp')) and not list(o.glob('.*.tmp.zip')), 'half-written temporaries left'
    for p in o.glob('*_labels.tif'): tifffile.imread(p)   # whatever is there is complete
    subprocess.run(['mount', '-o', 'remount,size=20m', str(small_tmpfs)], check=True)
    rc, out, err = _predict(args + ['--skip-existing'])
    assert rc == 0, err
    ref = tmp_path/'ref'; assert _predict([model, d, '--out', ref, '--fiji-rois', *TILE])[0] == 0
    assert _outputs(o) == _outputs(ref)

# ------------------------------------------------------------------------------------------- untrusted run folders
@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    from cellseg_nb.data.synthset import make_synthetic_livecell
    root = tmp_path_factory.mktemp('synth')
    d = make_synthetic_livecell(root/'data', n_images=4, seed=0, size=(64, 64), splits='train=1.0', progress=False)
    return d['images']['train'], d['annotations']['train']

def _train(argv): from cellseg_nb.train import train_cli; return _cli(train_cli, argv)

class _Payload:
    "Unpickling this writes a file: proof that loading ran code"
    def __init__(self, target): self.target = str(target)
    def __reduce__(self): return (Path.write_text, (Path(self.target), 'pwned'))

def test_crafted_checkpoint_does_not_run_code(synth, tmp_path):
    images, ann = synth; run = tmp_path/'run'; marker = tmp_path/'pwned'
    args = ['--out', run, '--images', images, '--annotations', ann, '--val-fraction', '0', '--config', 'unet_test',
            '--max-steps', '2', '--crop', '32', '--batch-size', '2', '--workers', '0', '--augment', 'none']
    rc, out, err = _train(args); assert rc == 0, err
    from cellseg_nb.loop import latest_checkpoint
    p, ck = latest_checkpoint(run)   # our own checkpoints load with weights_only=True
    assert ck['step'] == 2
    torch.save({**ck, 'step': 3, 'extra': _Payload(marker)}, run/'checkpoints'/'step-0000003.pt')
    rc, out, err = _train(args + ['--resume', '--max-steps', '4'])
    assert not marker.exists(), '--resume unpickled a crafted checkpoint and ran its code'
    assert rc == 2 and 'step-0000003.pt: refusing to load' in err, err

def test_damaged_model_folder(model, tmp_path):
    import shutil
    d = _images(tmp_path/'in', 1)
    for what, damage in [('model.safetensors', lambda p: p.write_bytes(p.read_bytes()[:1000])),
                         ('config.json', lambda p: p.write_text('{"encoder": ')),
                         ('config.json', lambda p: p.write_text('["not", "a", "config"]'))]:
        m = tmp_path/'m'; shutil.rmtree(m, ignore_errors=True); shutil.copytree(model, m); damage(m/what)
        rc, out, err = _predict([m, d, '--out', tmp_path/'out', *TILE])
        assert rc == 2 and f'{m/what}: unreadable' in err and 'copy it again' in err, (what, rc, err[-500:])

# ------------------------------------------------------------------------------------- hints that work when pasted
def test_demo_predict_hint_works_when_pasted(model, tmp_path):
    import shlex
    from cellseg_nb.demo import demo_summary
    d = _images(tmp_path/'demo out'/'data'/'test', 2)
    m = {'F1@0.5': 0.9, 'mSA': 0.8, 'pixel Dice': 0.9, 'cell-type accuracy': 0.7, 'images': 2, 'cells': 10}
    files = {k: str(tmp_path/k) for k in ('overlays', 'training_curve', 'metrics', 'metrics_json', 'evaluation', 'log')}
    r = dict(metrics=m, minutes=3.0, preset='cpu', threads=2, out=str(tmp_path/'demo out'), train=dict(steps=4, minutes=1.0, stop_reason='max_steps', best_score=0.9, best_step=4),
             files={**files, 'model': str(model), 'data': str(tmp_path/'demo out'/'data'), 'test_images': str(d)})
    hint = [l.strip() for l in demo_summary(r).splitlines() if 'cellseg predict' in l]
    assert len(hint) == 1, demo_summary(r)
    args = shlex.split(hint[0].split('(')[-1].rstrip(')') if '(' in hint[0] else hint[0])
    assert args[:2] == ['cellseg', 'predict']
    rc, out, err = _predict(args[2:] + ['--quiet'])
    assert rc == 0, f'the hint {hint[0]!r} fails when pasted: {err[-300:]}'
    assert (tmp_path/'demo out'/'predictions'/'img00_labels.tif').exists()

def _mask_folder(root, n=4, empty=False):
    from cellseg_nb.data.synth import synth_image
    imgs, masks = Path(root)/'imgs', Path(root)/'masks'; imgs.mkdir(parents=True); masks.mkdir()
    for i in range(n):
        img, lab, _ = synth_image(i, 'round', shape=(64, 64), density=0.4)
        tifffile.imwrite(imgs/f'im{i}.tif', img); tifffile.imwrite(masks/f'im{i}_masks.tif', (lab * 0 if empty else lab).astype(np.uint16))
    return imgs, masks

TRAIN = ['--val-fraction', '0', '--config', 'unet_test', '--max-steps', '1', '--crop', '32', '--batch-size', '2', '--workers', '0', '--augment', 'none']

def test_masks_option_keeps_the_data_folder(tmp_path):
    imgs, masks = _mask_folder(tmp_path)
    rc, out, err = _train(['--out', tmp_path/'run', '--data-folder', imgs, '--masks', masks, *TRAIN])
    assert rc == 0, err[-500:]
    cfg = json.loads((tmp_path/'run'/'config.json').read_text())['train']
    assert cfg['data_folder'] == str(imgs) and cfg['masks_dir'] == str(masks)

def test_all_zero_masks_are_a_clear_error(tmp_path):
    imgs, masks = _mask_folder(tmp_path, empty=True)
    rc, out, err = _train(['--out', tmp_path/'run', '--data-folder', imgs, '--masks', masks, *TRAIN])
    assert rc == 2 and 'training label masks are empty' in err and 'im0_masks.tif' in err, (rc, err[-500:])
    assert not (tmp_path/'run'/'summary.json').exists()

def test_missing_coco_images_hint_is_a_flag(synth, tmp_path):
    import shutil
    images, ann = synth; imgs = tmp_path/'imgs'; shutil.copytree(images, imgs)
    sorted(imgs.iterdir())[0].unlink()
    args = ['--out', tmp_path/'run', '--images', imgs, '--annotations', ann, *TRAIN]
    rc, out, err = _train(args)
    assert rc == 2 and '--skip-missing' in err and 'skip_missing=True (' in err, err[-500:]
    rc, out, err = _train(args + ['--skip-missing'])   # what the message says, pasted
    assert rc == 0, err[-500:]

# --------------------------------------------------------------------------------------------------- downloads
def test_download_sha256_unknown_key_and_recorded_sums(tmp_path):
    from cellseg_nb.data.download import download_cli, LIVECELL_URL, file_sha256
    from cellseg_nb.test_utils import LocalServer
    assert LIVECELL_URL.startswith('https://')
    rel = 'annotations/LIVECell/livecell_coco_val.json'
    (tmp_path/'srv'/rel).parent.mkdir(parents=True); (tmp_path/'srv'/rel).write_text(json.dumps({'images': [], 'annotations': []}))
    dest = tmp_path/'lc'
    with LocalServer(tmp_path/'srv') as srv:
        args = ['livecell', '--dest', dest, '--splits', 'val', '--no-images', '--base-url', srv.url, '--quiet']
        rc, out, err = _cli(download_cli, args + ['--sha256', rel.replace('val', 'vall') + '=' + 'a' * 64])   # a typo in the key
        assert rc == 2 and 'does not fetch' in err and rel in err, err
        rc, out, err = _cli(download_cli, args); assert rc == 0, err
        rec = dest/(rel + '.sha256')
        assert rec.read_text().split() == [file_sha256(dest/rel), 'livecell_coco_val.json']
        (dest/rel).write_text(json.dumps({'images': [1], 'annotations': []}))   # changed on disk after the download
        rc, out, err = _cli(download_cli, args)
        assert rc == 1 and 'changed since it was downloaded' in err, err

def test_disk_full_while_training_then_resume(synth, tmp_path, small_tmpfs):
    images, ann = synth
    subprocess.run(['mount', '-o', 'remount,size=5m', str(small_tmpfs)], check=True)   # two 2 MB checkpoints fit, a third does not
    args = ['--images', images, '--annotations', ann, '--val-fraction', '0', '--config', 'unet_test', '--max-steps', '8', '--crop', '32',
            '--batch-size', '2', '--workers', '0', '--augment', 'none', '--checkpoint-every', '2', '--seed', '1']
    run = small_tmpfs/'run'
    rc, out, err = _train(['--out', run, *args])
    assert rc == 1 and 'disk full' in err and f'cellseg train --out {run} --resume' in err, (rc, err[-800:])
    assert not [p for p in run.rglob('*') if p.name.endswith('.tmp')], 'half-written files left'
    from cellseg_nb.loop import latest_checkpoint
    p, ck = latest_checkpoint(run); assert ck is not None and not ck['state']['finished']
    subprocess.run(['mount', '-o', 'remount,size=40m', str(small_tmpfs)], check=True)
    rc, out, err = _train(['--out', run, '--resume', *args])   # the command the message gives
    assert rc == 0, err[-800:]
    rc, out, err = _train(['--out', tmp_path/'ref', *args]); assert rc == 0, err[-800:]
    ka, kb = latest_checkpoint(tmp_path/'ref')[1], latest_checkpoint(run)[1]
    assert ka['step'] == kb['step'] == 8
    for k, v in ka['model'].items(): assert torch.equal(v, kb['model'][k]), k
