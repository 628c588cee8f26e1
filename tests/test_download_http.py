"Offline HTTP tests of `cellseg_nb.data.download` beyond the notebook: many cuts, a changed file, the `cellseg` entry point."
import json, os, random, zipfile, warnings
from pathlib import Path
import pytest
from cellseg_nb.data.download import (download_file, download_livecell, DownloadError, IntegrityError, livecell_files, file_sha256)
from cellseg_nb.test_utils import LocalServer
from cellseg_nb.cli import main

def _zip(path, n=5, size=200_000, seed=0):
    rng = random.Random(seed)
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zf:
        for i in range(n): zf.writestr(f'images/livecell_train_val_images/BV2/BV2_Phase_A1_1_00d00h00m_{i}.tif', rng.randbytes(size))
    return path

def test_many_cuts_resume_to_identical_bytes(tmp_path):
    (tmp_path/'srv').mkdir(); src = _zip(tmp_path/'srv'/'images.zip')
    with LocalServer(tmp_path/'srv', cut_after=123_457, cuts=8) as srv:
        out = download_file(srv.url + 'images.zip', tmp_path/'out'/'images.zip', progress=False, retries=10, backoff=0)
    assert file_sha256(out) == file_sha256(src)
    offsets = [int(r['Range'].split('=')[1][:-1]) if 'Range' in r else 0 for r in srv.requests]
    assert offsets == [i*123_457 for i in range(len(offsets))] and len(offsets) == 9

def test_changed_file_restarts_via_if_range(tmp_path):
    (tmp_path/'srv').mkdir(); src = _zip(tmp_path/'srv'/'images.zip')
    with LocalServer(tmp_path/'srv', cut_after=100_000) as srv:
        with pytest.raises(DownloadError): download_file(srv.url + 'images.zip', tmp_path/'images.zip', progress=False, retries=0)
        _zip(src, seed=1); os.utime(src, ns=(1, 1))  # the server's copy changes: new ETag
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            download_file(srv.url + 'images.zip', tmp_path/'images.zip', progress=False)
    assert srv.requests[1].get('If-Range') and any('sent the whole file' in str(x.message) for x in w)
    assert file_sha256(tmp_path/'images.zip') == file_sha256(src)

def test_part_complete_before_crash_gets_416_and_finishes(tmp_path):
    (tmp_path/'srv').mkdir(); src = _zip(tmp_path/'srv'/'images.zip')
    with LocalServer(tmp_path/'srv') as srv:
        download_file(srv.url + 'images.zip', tmp_path/'a.zip', progress=False)
        os.replace(tmp_path/'a.zip', tmp_path/'b.zip.part')  # as if we crashed just before the rename
        (tmp_path/'b.zip.part.json').write_text(json.dumps({'total': src.stat().st_size, 'etag': None}))
        download_file(srv.url + 'images.zip', tmp_path/'b.zip', progress=False)
    assert file_sha256(tmp_path/'b.zip') == file_sha256(src) and not (tmp_path/'b.zip.part').exists()

def test_cellseg_entry_point(tmp_path, capsys):
    bucket = tmp_path/'bucket'
    for rel in livecell_files(['val'], images=False).values():
        (bucket/rel).parent.mkdir(parents=True); (bucket/rel).write_text('{"images": [], "annotations": []}')
    _zip(bucket/'images.zip')
    with LocalServer(bucket) as srv:
        assert main(['download', 'livecell', '--dest', str(tmp_path/'lc'), '--base-url', srv.url, '--splits', 'val', '--quiet']) == 0
    assert len(list((tmp_path/'lc'/'images'/'livecell_train_val_images'/'BV2').glob('*.tif'))) == 5
    assert 'LIVECell is ready' in capsys.readouterr().out

def test_corrupt_download_never_becomes_final(tmp_path):
    (tmp_path/'srv').mkdir(); b = bytearray(_zip(tmp_path/'srv'/'images.zip').read_bytes()); b[5000] ^= 1
    (tmp_path/'srv'/'images.zip').write_bytes(bytes(b))
    with LocalServer(tmp_path/'srv') as srv, pytest.raises(IntegrityError, match='images.zip.corrupt'):
        download_livecell(tmp_path/'lc', [], srv.url, progress=False)
    assert not (tmp_path/'lc'/'images.zip').exists() and not (tmp_path/'lc'/'images').exists()
