#!/usr/bin/env bash
# Builds the e2e test image (default dso-testapp:dev) from hack/testapp.
#
# No registry is reachable where dso is tested, so the image is FROM scratch
# with a static Go binary, built by the legacy builder (BuildKit would try to
# resolve frontends and base images remotely). The binary is also the
# HEALTHCHECK (`testapp probe`), since scratch has no shell or curl.
#
# Idempotent: a rebuild with an unchanged binary reuses the cached layers and
# leaves the image ID unchanged.
set -euo pipefail

tag="${1:-dso-testapp:dev}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v docker >/dev/null 2>&1; then
  echo "build-testimage: the docker CLI is not installed; run hack/ensure-docker.sh first" >&2
  exit 1
fi

ctx="$(mktemp -d "${TMPDIR:-/tmp}/dso-testimage.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT

# -trimpath and no build id keep the binary byte-identical between builds of
# the same source, so the COPY layer (and the image ID) stays cached.
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w -buildid=' -o "$ctx/testapp" ./hack/testapp)

cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY testapp /testapp
EXPOSE 8080
HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD ["/testapp","probe"]
ENTRYPOINT ["/testapp"]
DOCKERFILE

# The legacy builder prints a deprecation banner on every run; show the
# builder's output only when the build fails.
if ! out="$(DOCKER_BUILDKIT=0 docker build --quiet --label "org.opencontainers.image.title=dso-testapp" -t "$tag" "$ctx" 2>&1)"; then
  echo "$out" >&2
  echo "build-testimage: docker build of $tag failed (is the engine up? try hack/ensure-docker.sh)" >&2
  exit 1
fi
echo "built $tag ($(docker image inspect --format '{{.Id}}' "$tag"))"
