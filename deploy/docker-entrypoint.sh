#!/bin/sh
# Image entry point: fetch the deployed config when EBBTIDE_CONFIG_URL names one (the stack's
# bucket, see `ebbtide aws deploy`), then run the command (`ebbtide worker …`, `ebbtide scaler`).
set -eu
if [ -n "${EBBTIDE_CONFIG_URL:-}" ]; then
  EBBTIDE_CONFIG="${EBBTIDE_CONFIG:-$HOME/ebbtide.yaml}"
  ebbtide aws pull-config "$EBBTIDE_CONFIG_URL" "$EBBTIDE_CONFIG"
  export EBBTIDE_CONFIG
fi
exec "$@"
