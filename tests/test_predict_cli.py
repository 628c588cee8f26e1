"`cellseg predict` through the installed console script: help, a small run, and a bad file's exit status."
import json, subprocess, shutil, sys
from pathlib import Path
import numpy as np
import pytest

def _cellseg(*args):
    exe = shutil.which('cellseg') or str(Path(sys.executable).parent/'cellseg')
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=600)

def test_help():
    r = _cellseg('predict', '--help')
    assert r.returncode == 0 and '--tile' in r.stdout and '--fiji-rois' in r.stdout

def test_run_and_bad_file(tmp_path):
    tifffile = pytest.importorskip('tifffile')
    from cellseg_nb.models.unet import create_model, save_model
    save_model(create_model('unet_test', pretrained=False), tmp_path/'model')
    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path/'good.tif', rng.integers(0, 255, (96, 130), dtype=np.uint8))
    (tmp_path/'bad.tif').write_bytes((tmp_path/'good.tif').read_bytes()[:100])
    r = _cellseg('predict', tmp_path/'model', tmp_path/'good.tif', tmp_path/'bad.tif', '--out', tmp_path/'out', '--tile', '64', '--overlap', '16', '--quiet')
    assert r.returncode == 1, r.stderr
    assert 'bad.tif' in r.stderr
    assert (tmp_path/'out'/'good_labels.tif').exists() and (tmp_path/'out'/'good_cells.csv').exists()
    assert isinstance(json.loads((tmp_path/'out'/'predictions.json').read_text()), list)
