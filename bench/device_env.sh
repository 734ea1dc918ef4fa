# Sourced by the scripts that run on a lent GPU machine (bench/gpu.sh, bench/study_gpu.sh): that machine has
# PyTorch but not pydantic and cannot reach PyPI, so it installs the wheels bench/prepare_gpu.sh staged in
# .device/whl, and puts the project's sources on the path (there is no `pip install -e` there either).
if [ -d .device/whl ]; then
    python3 -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version' \
        || { echo "the carried wheels are for Python 3.12; download them for this python3" >&2; exit 1; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device/whl/*.whl
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}"
export PYTHONUNBUFFERED=1
