"""Download throughput of `cellseg_nb.data.download.download_file` against plain `urllib.request.urlretrieve`
and `requests` streaming (no resume, no verification), measured in the same run on the same local server,
plus the cost of a cut + resume against restarting from zero.

    python bench/bench_download.py [--mb 200] [--repeats 3]

Results are printed and written to bench/out/bench_download.json."""
import argparse, json, os, random, statistics, tempfile, time, urllib.request, zipfile
from pathlib import Path
import requests
from cellseg_nb.data.download import download_file, verify_file
from cellseg_nb.test_utils import LocalServer

def make_zip(path, mb):
    rng = random.Random(0)
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zf:
        for i in range(mb): zf.writestr(f'images/livecell_train_val_images/A172/A172_{i}.tif', rng.randbytes(1 << 20))

def timed(fn, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--mb', type=int, default=200); ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp()); (tmp/'srv').mkdir(); make_zip(tmp/'srv'/'images.zip', a.mb)
    size = (tmp/'srv'/'images.zip').stat().st_size; out = tmp/'images.zip'
    def fresh(p): p.unlink(missing_ok=True); return p
    res = {'file_mb': size/2**20}
    with LocalServer(tmp/'srv') as srv:
        url = srv.url + 'images.zip'
        res['urlretrieve_s'] = timed(lambda: urllib.request.urlretrieve(url, fresh(out)), a.repeats)
        def req():
            with requests.get(url, stream=True) as r, open(fresh(out), 'wb') as f:
                for c in r.iter_content(1 << 20): f.write(c)
        res['requests_s'] = timed(req, a.repeats)
        res['ours_s'] = timed(lambda: download_file(url, fresh(out), progress=False), a.repeats)
        res['ours_progress_s'] = timed(lambda: download_file(url, fresh(out), progress=True), a.repeats)
        res['verify_testzip_s'] = timed(lambda: verify_file(out), a.repeats)
        res['rerun_skip_s'] = timed(lambda: download_file(url, out, progress=False), a.repeats)
        def cut_resume():
            srv.cut_after, srv.cuts = size // 2, 1   # the transfer is cut half-way, download_file resumes it
            download_file(url, fresh(out), progress=False, backoff=0)
        res['cut_half_resume_s'] = timed(cut_resume, a.repeats)
    res['ours_vs_urlretrieve_speed'] = res['urlretrieve_s'] / res['ours_s']
    res['ours_vs_requests_speed'] = res['requests_s'] / res['ours_s']
    res['cut_resume_vs_uncut'] = res['ours_s'] / res['cut_half_resume_s']
    for k, v in res.items(): print(f'{k:28s} {v:8.3f}')
    print(f"throughput: ours {size/2**20/res['ours_s']:.0f} MB/s (incl. testzip verify), urlretrieve {size/2**20/res['urlretrieve_s']:.0f} MB/s")
    Path('bench/out').mkdir(parents=True, exist_ok=True)
    Path('bench/out/bench_download.json').write_text(json.dumps(res, indent=1))

if __name__ == '__main__': main()
