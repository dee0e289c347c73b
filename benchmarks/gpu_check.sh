#!/usr/bin/env bash
# The GPU check on a machine that has Python and a CUDA build of PyTorch, and perhaps no
# network: installs imacs and its PyTorch plugin from this checkout without touching torch,
# and Captum and PAIR saliency from wheels in .gpu-wheels/ when they are there (see
# benchmarks/README.md), then runs benchmarks/gpu_check.py within 5 minutes.
# Results: gpu_check.json and the benchmarks' JSON under $OUT, else benchmarks/results.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
plugins=(-e plugins/imacs-torch)
if compgen -G ".gpu-wheels/*.whl" >/dev/null; then
    "$python" -m pip install --quiet --no-index --no-deps .gpu-wheels/*.whl
    plugins+=(-e plugins/imacs-captum)
fi
"$python" -m pip install --quiet --no-index --no-deps --no-build-isolation -e . "${plugins[@]}"
out=${OUT:-benchmarks/results}
status=0
timeout 290 "$python" benchmarks/gpu_check.py --out "$out" || status=$?
cp benchmarks/results/attribution_speed-*.json benchmarks/results/quality_speed*.json "$out" 2>/dev/null || true
exit $status
