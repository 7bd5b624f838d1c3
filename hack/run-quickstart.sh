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
if ! docker image inspect dso-testapp:dev >/dev/null 2>&1; then
  "$root/hack/build-testimage.sh" dso-testapp:dev
fi
if ! docker container inspect dso-quickstart-demo >/dev/null 2>&1; then
  echo "== creating the demo container dso-quickstart-demo (dso-testapp:dev)"
  docker run -d --name dso-quickstart-demo --label dso.quickstart=true dso-testapp:dev >/dev/null
fi
cat <<MSG
== starting the agent in the foreground (Ctrl-C stops it)
In another terminal, change the secret and watch the container rotate:
  export DSO_CONFIG=$DSO_CONFIG
  printf 'new-value' | $DSO secret set demo/db_password
  docker ps --filter name=dso-quickstart-demo --format '{{.Names}} {{.Status}} {{.Label "dso.dev/secret-hash"}}'
  docker exec dso-quickstart-demo /testapp get 'http://127.0.0.1:8080/file?path=/run/secrets/db_password'   # sha256 of the value
Clean up afterwards: docker rm -f dso-quickstart-demo; umount $dir/secrets; rm -rf $dir
MSG
exec "$DSO" agent --config "$DSO_CONFIG"
