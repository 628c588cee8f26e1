"""`bench/bench_gpu.py --tiny`: the GPU benchmark's code runs at toy sizes on a CPU and reports every figure of issue 15."""
import json, sys
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]

def test_bench_gpu_tiny():
    sys.path.insert(0, str(ROOT/'bench'))
    import bench_gpu
    out = bench_gpu.main(['--tiny'])
    assert json.loads((ROOT/'bench/out/gpu_tiny.json').read_text())['sizes'] == out['sizes']
    ld = out['loader']
    assert ld['cpu_path_samples_per_s_per_core'] > 0 and ld['window_samples_per_s_per_core'] > 0 and ld['device_augment_samples_per_s'] > 0
    assert ld['ratio_window_vs_cpu_path'] > 1   # cutting windows is cheaper than augmenting + targets, even at toy sizes
    assert [w['workers'] for w in out['loader_wait']] == [2] and 0 <= out['loader_wait'][0]['data_wait'] <= 1
    st = out['step']['seconds']
    assert {'ours fp32', 'smp fp32', 'ours fp32+channels_last', 'smp fp32+channels_last'} <= set(st) and all(v > 0 for v in st.values())
    assert out['step']['speedup_ours_best_vs_smp_eager'] > 0 and all(v > 0 for v in out['predict']['images_per_s'].values())
    assert set(out['predict']['images_per_s']) == {'workers=0', 'workers=1'}   # in-process and through a worker process
