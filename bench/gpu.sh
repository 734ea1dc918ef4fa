#!/usr/bin/env bash
# GPU check for a lent H100/H200 (issue 4): one call, a few minutes, everything printed.
#
# The device machine has PyTorch, numpy, PyYAML, tqdm, Pillow, scipy and click, but not pydantic, and
# it cannot reach PyPI. Before the call, on the development machine, from the repository root:
#
#   echo /.device/ >> .git/info/exclude; mkdir -p .device/whl
#   cp ../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz .device/
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .device/whl \
#       pydantic pydantic-core annotated-types typing-inspection
#
# then run `bash bench/gpu.sh` there with `.device` carried. Extra arguments go to bench/gpu.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
if [ -d .device/whl ]; then
    python3 -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version' \
        || { echo "the carried wheels are for Python 3.12; download them for this python3" >&2; exit 1; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device/whl/*.whl
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv || true
data="${SUPERNET_DATA:-.device/cifar10-jpeg.tar.gz}"
exec python3 bench/gpu.py --data "$data" data.cache_dir=/tmp/supernet-cache "$@"
