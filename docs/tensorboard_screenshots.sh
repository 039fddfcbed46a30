#!/usr/bin/env bash
# Screenshots of what TensorBoard opens on, taken in a real browser: start TensorBoard on LOGDIR,
# wait until it has read the runs, save PNGs of its Time Series, Scalars and HParams (table view)
# pages into OUT_DIR, print which tag groups open and which HParams columns are ticked, stop it.
#
#   docs/tensorboard_screenshots.sh LOGDIR OUT_DIR [PREFIX] [PORT]
#   e.g.  python sweeps/eps_k_grid.py --name demo && docs/tensorboard_screenshots.sh results/demo shots
#
# Set-up, once (Debian's Chromium; playwright-core only drives it and downloads no browser):
#   apt-get install -y chromium
#   mkdir -p /tmp/tbshots && (cd /tmp/tbshots && npm i playwright-core)
#   export NODE_PATH=/tmp/tbshots/node_modules
# CHROMIUM=/path overrides the browser, VIEWPORT=WIDTHxHEIGHT the window (default 1600x1000).
# Charts are drawn as SVG (?forceSVG=true): headless Chromium without a GPU leaves WebGL charts blank.
set -euo pipefail
usage="usage: tensorboard_screenshots.sh LOGDIR OUT_DIR [PREFIX] [PORT]"
logdir=${1:?$usage}
out=${2:?$usage}
prefix=${3:-tb}
port=${4:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$logdir" ] || { echo "tensorboard_screenshots.sh: no folder $logdir" >&2; exit 2; }
node -e 'require("playwright-core")' 2>/dev/null ||
  { echo "tensorboard_screenshots.sh: playwright-core not found: npm i playwright-core and set NODE_PATH (see the header)" >&2; exit 2; }
mkdir -p "$out"

tensorboard --logdir "$logdir" --host 127.0.0.1 --port "$port" >"$out/$prefix.tensorboard.log" 2>&1 &
tb=$!
trap 'kill "$tb" 2>/dev/null || true' EXIT
# TensorBoard answers before it has read the logdir: wait until the HParams endpoint lists columns.
ready=
for _ in $(seq 120); do
  kill -0 "$tb" 2>/dev/null || { cat "$out/$prefix.tensorboard.log" >&2; exit 1; }
  if curl -sf -X POST -H 'Content-Type: application/json' -d '{"experimentName":""}' \
       "http://127.0.0.1:$port/data/plugin/hparams/experiment" | grep -q hparamInfos; then
    ready=1
    break
  fi
  sleep 1
done
[ -n "$ready" ] || { echo "tensorboard_screenshots.sh: TensorBoard listed no HParams in 120 s" >&2; exit 1; }
node "$here/tensorboard_screenshots.cjs" "http://127.0.0.1:$port" "$out" "$prefix"
