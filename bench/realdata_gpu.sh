#!/usr/bin/env bash
# The real-data benchmark's GPU rows: leave-one-image-out LIVECell-5, ours, Cellpose 3 and the smp script, on one GPU.
#
# Each method's 5 folds train side by side (5 lanes, BUDGET wall-minutes each, 3 CPU threads each), one method after
# the other, so every method shares the GPU the same way; a method that fails does not stop the next (its lane's log
# says why). Needs: the repo's Python packages (or wheels in .whl, installed into /tmp/site), Cellpose 3 importable by the same python (REALDATA_CELLPOSE_PYTHON), and the LIVECell sample at
# $CELLSEG_SHARED_DATA/livecell-sample (default ../shared/data). Results: bench/out/realdata/runs.jsonl and preds/,
# copied to $OUT (runs.jsonl, preds.tgz, lanes.log) when OUT is set; then `python bench/realdata.py --report` here.
#
#     BUDGET=2.5min-5lanes METHODS="ours cellpose" bash bench/realdata_gpu.sh
#     METHODS=smp SEED=1 bash bench/realdata_gpu.sh   # the smp script (segmentation_models_pytorch: a wheel in .whl on a bare machine)
#     METHODS=ours ABLATION='{"model": "unet_effv2_b0", "crop_size": 256, "batch_size": 4}' NAME=cpu-sizes bash bench/realdata_gpu.sh
set -u
cd "$(dirname "$0")/.."
BUDGET=${BUDGET:-2.5min-5lanes}; METHODS=${METHODS:-"ours cellpose"}; SEED=${SEED:-0}
ABLATION=${ABLATION:-'{}'}; NAME=${NAME:-}  # TrainConfig fields for `ours` and the row's name (realdata.py --ablation, --name)
MINUTES=${BUDGET%%min*}
LANE_LIMIT=${LANE_LIMIT:-$(python3 -c "print(int(float('$MINUTES') * 120 + 120))")}  # seconds a lane may take, start-up, calibration and prediction included
FOLDS="BT474_B3 BT474_C3 Huh7_A10 MCF7_F4 MCF7_G4"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 REALDATA_CELLPOSE_PYTHON=${REALDATA_CELLPOSE_PYTHON:-$(command -v python3)}
LOGS=$(mktemp -d); OUT=${OUT:-}
finish() {
  [ -n "$OUT" ] || return 0
  for f in "$LOGS"/*.log; do echo "=== $f"; tail -n 40 "$f"; done > "$OUT/lanes.log" 2>/dev/null
  cp bench/out/realdata/runs.jsonl "$OUT/" 2>/dev/null
  tar czf "$OUT/preds.tgz" -C bench/out/realdata preds 2>/dev/null
  rm -rf "$LOGS"
}
trap finish EXIT
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, timm, accelerate, numpy; print('torch', torch.__version__, 'timm', timm.__version__, 'accelerate', accelerate.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"
date +%T
python3 -c "import sys; sys.path.insert(0, 'bench'); import realdata; realdata.lc5_items()"  # fill the image cache before the lanes
for m in $METHODS; do
  date +%T; echo "lanes: $m, $BUDGET"
  pids=()
  for f in $FOLDS; do
    OMP_NUM_THREADS=3 MKL_NUM_THREADS=3 timeout -k 30 "$LANE_LIMIT" python3 bench/realdata.py --one lc5-loio "$f" "$m" "$BUDGET" "$SEED" \
      --ablation "$ABLATION" --name "$NAME" > "$LOGS/${m}_$f.log" 2>&1 &
    pids+=($!)
  done
  i=0; for f in $FOLDS; do wait "${pids[$i]}" || echo "lane $m $f failed: rc $? (its log: lanes.log)"; i=$((i + 1)); done
  grep -h "F1" "$LOGS"/${m}_*.log
  [ -n "$OUT" ] && cp bench/out/realdata/runs.jsonl "$OUT/" 2>/dev/null  # what is done comes back even if the call is killed
  nvidia-smi --query-gpu=memory.used --format=csv,noheader
done
date +%T
