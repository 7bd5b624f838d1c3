#!/usr/bin/env bash
# Runs the README's first command: the quickstart on the local encrypted store.
# Everything it creates lives in ./.quickstart (delete it to start over).
set -euo pipefail
DSO=${1:-bin/dso}
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.quickstart"
mkdir -p "$dir/bindings.d" "$dir/run"
sed "s#@DIR@#$dir#g" "$root/config/samples/quickstart/dso.yaml.tmpl" > "$dir/dso.yaml"
export DSO_CONFIG="$dir/dso.yaml"

if [ ! -f "$dir/vault.enc" ]; then
  "$DSO" init
fi
if ! "$DSO" secret list demo/ | grep -qx 'demo/api_key'; then
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' | "$DSO" secret set demo/api_key
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' | "$DSO" secret set demo/db_password
fi
echo "== secrets in the quickstart store"
"$DSO" secret list --long demo/
echo "== configuration"
"$DSO" config validate
if "$DSO" agent --help >/dev/null 2>&1; then
  exec "$DSO" agent --config "$DSO_CONFIG"
fi
cat <<MSG
The agent ('dso agent') is not built yet: it is the next issue (the reconciliation engine).
What exists today: the local store above (DSO_CONFIG=$DSO_CONFIG), e.g.
  DSO_CONFIG=$DSO_CONFIG $DSO secret set demo/api_key < some-file
  DSO_CONFIG=$DSO_CONFIG $DSO secret get demo/api_key
MSG
