#!/usr/bin/env bash
# The GPU run of petrecon on a machine without network access: see benchmarks/gpu/run_device.py.
#
#   bash benchmarks/gpu/run.sh              # on the GPU machine: JSON, run.log, gpu-tests.xml into $OUT
#   bash benchmarks/gpu/run.sh --dry-run --out /tmp/gpu-dry   # anywhere: CPU backend, tiny sizes
#
# Wheels in .device-wheels/ (pydicom; fetched beforehand, see run_device.py) are installed into a
# temporary folder without an index; the checkout itself goes on PYTHONPATH (no build, no install).
set -euo pipefail
cd "$(dirname "$0")/../.."
if compgen -G ".device-wheels/*.whl" >/dev/null; then
    site="$(mktemp -d)"
    trap 'rm -rf "$site"' EXIT
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .device-wheels/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 benchmarks/gpu/run_device.py "$@"
