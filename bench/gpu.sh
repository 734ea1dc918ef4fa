#!/usr/bin/env bash
# GPU check for a lent H100/H200 (issue 4): one call, a few minutes, everything printed.
#
# The device machine has PyTorch, numpy, PyYAML, tqdm, Pillow, scipy and click, but not pydantic, and
# it cannot reach PyPI: first run `bash bench/prepare_gpu.sh` here (stages the CIFAR-10 archive and
# pydantic's wheels in .device/), then run `bash bench/gpu.sh` there with `.device` carried.
# Extra arguments go to bench/gpu.py (options and key=value overrides, in any order).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv || true
data="${SUPERNET_DATA:-.device/cifar10-jpeg.tar.gz}"
python3 bench/gpu.py --data "$data" data.cache_dir=/tmp/supernet-cache "$@"
# The evaluation phase (issue 12.9): NAS-Bench-201's final protocol for one architecture, 2 epochs on all 50k images in
# bf16; its epoch lines give the seconds per epoch of `supernet retrain` (x 200 epochs for the full protocol).
python3 -m supernet retrain '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|' \
    data.root="$data" data.cache_dir=/tmp/supernet-cache runtime.precision=bf16 final.epochs=2 final.eval_every=1 \
    --out-dir /tmp/retrain || echo "retrain check failed"
# DARTS-NDS on the card (no ground truth needed): step time of super-net path vs stand-alone network, and
# that a path still computes its extracted network with bf16 and channels-last (cuDNN dilated depthwise convs).
cd bench && python3 ws_overhead.py --space darts_nds --device cuda --precision bf16 --channels 16 --layers 8 \
    --batch 128 --archs 5 --repeats 5
# Scaling of one super-net over the card's GPUs (issue 13.1): `supernet train` of the paper's NB201 recipe for 2
# epochs under torchrun with 1, 2, ... N processes, printing the wall time of each (skipped with one GPU).
gpus=$(nvidia-smi --list-gpus 2>/dev/null | wc -l || echo 0)
if [ "$gpus" -gt 1 ]; then
    for n in $(seq 1 "$gpus"); do
        start=$(date +%s.%N)
        python3 -m torch.distributed.run --nproc_per_node="$n" -m supernet train recipes/nb201.yaml \
            data.root="$data" data.cache_dir=/tmp/supernet-cache out_dir=/tmp/scaling-$n protocol.epochs=2 \
            evaluation.every=0 evaluation.pool_size=20 evaluation.proxies=none progress=false > /dev/null
        echo "torchrun scaling: $n GPU(s): $(echo "$(date +%s.%N) - $start" | bc) s for 2 epochs + a 20-arch evaluation"
    done
else
    echo "torchrun scaling: skipped (one GPU)"
fi
