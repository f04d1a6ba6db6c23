#!/usr/bin/env bash
# Plans every example config (and docs/examples/*-scaler.yaml), then runs cfn-lint, parliament (IAM) and checkov on the templates
# and hadolint and checkov on the Dockerfiles. Any failure fails `make test`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
lint="$root/.venv-lint/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" BC_SKIP_MAPPING=TRUE
cd "$work"  # plans write nothing, but the embedded defaults would create ./ebbtide-data
# the deploy examples, and the seeds' scaler-only configs (stacks for the user's own workers)
for cfg in "$root"/deploy/examples/*.yaml "$root"/docs/examples/*-scaler.yaml; do
  "$root/.venv/bin/ebbtide" --config "$cfg" aws plan --format json --out "$work/$(basename "$cfg" .yaml).json" 2>/dev/null
done
echo "== cfn-lint";   "$lint/cfn-lint" "$work"/*.json
echo "== parliament"; "$lint/python" "$root/deploy/lint/iam_lint.py" "$work"/*.json
echo "== checkov (templates)"
"$lint/checkov" -d "$work" --framework cloudformation --compact --quiet --skip-download
echo "== hadolint"
for f in "$root"/deploy/Dockerfile.*; do "$lint/hadolint" --failure-threshold info "$f"; done
echo "== checkov (Dockerfiles)"
"$lint/checkov" -d "$root/deploy" --framework dockerfile --compact --quiet --skip-download
echo "deploy lints passed"
