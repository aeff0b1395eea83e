#!/usr/bin/env bash
# Set up the stacks' tooling: the CDK Terrain CLI (npm, pinned by package-lock.json) for
# `npx cdktn synth|diff|deploy`, and the trimmed provider assemblies `python -m stacks`
# loads (built once per provider version into ~/.cache/gpufleet/jsii; stacks/bindings.py).
#
#   scripts/setup_stacks.sh [PYTHON]      # PYTHON: the project's venv python (default .venv/bin/python)
#
# Idempotent (does nothing when both are current) and offline-safe: without npm or the
# registry it says so and succeeds, since `python -m stacks` synthesizes without the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${1:-.venv/bin/python}"
stamp=node_modules/.gpufleet-setup

if [ -x node_modules/.bin/cdktn ] && [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ]; then
    :  # the CLI matches the lock file
elif ! command -v npm >/dev/null 2>&1; then
    echo "setup_stacks: npm not found; skipping the cdktn CLI (python -m stacks works without it)" >&2
elif npm ci --prefer-offline --no-audit --no-fund --loglevel=error; then
    touch "$stamp"
else
    echo "setup_stacks: npm ci failed (offline?); skipping the cdktn CLI (python -m stacks works without it)" >&2
fi

# Build the trimmed assemblies now rather than in the first synth or test run (~15 s, once).
JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="${JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION:-20}" \
    "$python" -c 'from stacks import bindings; [bindings.load_provider(p) for p in bindings.PACKAGES]'
