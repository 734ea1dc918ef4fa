#!/usr/bin/env bash
# Issue 14's ranking-methods study on a lent GPU: `bench/ranking_methods_cpu.py` for several (method, seed) pairs
# at once, one process per pair, each with its own store, proxy cache and 2 CPU threads. The CPU recipe's C=8
# super-net leaves a card idle between its small kernels (bench/RESULTS.md, "GPU check"), so the processes
# overlap; MPS is started where the machine has it, to let their kernels run side by side.
#
#   bash bench/prepare_gpu.sh                                   # here: stage the data and pydantic's wheels
#   bash bench/study_gpu.sh SECONDS few_shot:0 recipe:0 ... [-- key=value ...]   # there, with .device carried
#
# Each process is stopped with SIGINT after SECONDS (a stopped run keeps its last epoch's checkpoint and resumes
# on any machine: the device is not part of a run's identity). Each run lands in $OUT/METHOD-SEED.tgz (or /tmp/):
# unpack it and read it with `python bench/ranking_study_table.py --out-dir DIR/METHOD-SEED`.
set -uo pipefail
cd "$(dirname "$0")/.."
usage="usage: bash bench/study_gpu.sh SECONDS METHOD:SEED ... [-- key=value ...]"
[[ ${1:-} =~ ^[0-9]+$ ]] || { echo "$usage" >&2; exit 2; }
limit=$1
shift
jobs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    [[ $1 =~ ^[a-z_0-9]+:[0-9]+$ ]] || { echo "'$1' is not METHOD:SEED; $usage" >&2; exit 2; }
    jobs+=("$1")
    shift
done
[ ${#jobs[@]} -gt 0 ] || { echo "$usage" >&2; exit 2; }
source bench/device_env.sh
[ $# -gt 0 ] && shift  # what follows -- is key=value overrides for every run
runs=/tmp/study-gpu
data=.device/cifar10-jpeg.tar.gz
mkdir -p "$runs"
if command -v nvidia-cuda-mps-control > /dev/null && nvidia-cuda-mps-control -d; then
    timeout 60 python3 -c 'import torch; torch.zeros(1, device="cuda")' && echo "MPS on" \
        || { echo quit | nvidia-cuda-mps-control; echo "MPS off: a client could not start"; }
else
    echo "MPS off: not on this machine"
fi
for job in "${jobs[@]}"; do
    method=${job%:*} seed=${job#*:} dir="$runs/${job/:/-}"
    # Its own cache (decoded images, proxy scores): SQLite writers of several processes would wait on each other.
    # Proxy scores prepare_gpu.sh staged from this machine's cache are reused when the decoded batch is the same.
    mkdir -p "$dir/cache"
    [ -f .device/proxies.sqlite ] && cp .device/proxies.sqlite "$dir/cache/"
    SUPERNET_CACHE="$dir/cache" OMP_NUM_THREADS=2 timeout --signal=INT "$limit" \
        python3 bench/ranking_methods_cpu.py --data "$data" --method "$method" --seeds "$seed" --evals plain \
        --out-dir "$dir" --results "$dir/results.jsonl" data.cache_dir="$dir/cache" "$@" > "$dir.log" 2>&1 &
done
wait
nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv || true
for log in "$runs"/*.log; do echo "== $log"; tail -n 4 "$log"; done
# One archive per run (the device tool returns at most 8 files of 16 MiB): its store, checkpoint and log; the
# temporal-ensemble snapshots only of a run that did not finish (a resumed run needs them, a finished one not).
for dir in "$runs"/*/; do
    dir=${dir%/}
    [ -s "$dir/results.jsonl" ] && rm -rf "$dir"/*/snapshots
    rm -rf "$dir/cache"
    tar czf "${OUT:-/tmp}/$(basename "$dir").tgz" -C "$runs" "$(basename "$dir")" "$(basename "$dir").log"
done
