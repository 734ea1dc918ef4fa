#!/usr/bin/env bash
# Stage what bench/gpu.sh needs on a lent GPU machine (which cannot reach PyPI) in .device/, a folder
# git ignores locally: the CIFAR-10 JPEG archive, pydantic's wheels for the machine's Python 3.12, and a
# consistent copy of this machine's proxy-score cache (bench/study_gpu.sh reuses it instead of re-scoring).
# Then call the device tool with carry [".device"] and the command `bash bench/gpu.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz}"
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.device/' "$exclude" 2>/dev/null || echo '/.device/' >> "$exclude"
mkdir -p .device/whl
cp "$data" .device/cifar10-jpeg.tar.gz
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .device/whl \
    pydantic pydantic-core annotated-types typing-inspection typing-extensions
cache="${SUPERNET_CACHE:-$HOME/.cache/supernet}/proxies.sqlite"
if [ -f "$cache" ]; then
    python3 -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))" "$cache" .device/proxies.sqlite
fi
du -sh .device
