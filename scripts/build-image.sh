#!/usr/bin/env bash
# Builds daemonset/Dockerfile here, where no image registry is reachable, and starts the controller and an
# agent from the image. Takes minutes (npm ci + tsc inside the build), so it is not part of `npm test`
# (test/daemonset/dockerfile.test.ts checks the recipe's structure there).
#
#   bash scripts/build-image.sh [--keep]
#
# 1. a local base image, localhost/weft-node-base:bookworm: a Debian bookworm userland made by debootstrap
#    from Debian's own packages, plus this machine's Node runtime (node + npm) copied in; it stands in for
#    the public node:20-bookworm-slim that the published build uses (same Debian, same apt sources);
# 2. podman build -f daemonset/Dockerfile --build-arg NODE_IMAGE=<that base> -t localhost/weft:dev .
# 3. runs from the image: `weft --help`, `weft check` when the CLI has it, `weft controller` (waits until its
#    gRPC and web ports listen and /healthz answers) and `weft agent --help`; all on loopback (--network host
#    for the controller, bound to 127.0.0.1), removed at the end.
# Needs: podman, buildah, debootstrap, runc (apt-get install podman buildah debootstrap runc), root.
# This machine mounts cgroups in hybrid mode (v1 controllers + an empty v2 hierarchy), which crun refuses,
# and does not let a container raise its rlimits: the script runs podman with runc, the cgroupfs manager
# and no default ulimits (a containers.conf of its own, through CONTAINERS_CONF; nothing system-wide).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=localhost/weft-node-base:bookworm
IMAGE=localhost/weft:dev
KEEP=${1:-}
WORK=$(mktemp -d /tmp/weft-image.XXXXXX)
CTR=weft-controller-$$
cleanup() {
  podman rm -f "$CTR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in podman buildah debootstrap runc node curl; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is missing (apt-get install podman buildah debootstrap runc)" >&2; exit 2; }
done
printf '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n' >"$WORK/containers.conf"
export CONTAINERS_CONF="$WORK/containers.conf"

step() { echo "== $(date -u +%H:%M:%S) $*"; }

if ! podman image exists "$BASE"; then
  step "base image $BASE: debootstrap bookworm (minbase) + node $(node --version) from this machine"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  NODE_BIN=$(readlink -f "$(command -v node)")
  NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  install -D -m 0755 "$NODE_BIN" "$WORK/rootfs/usr/local/bin/node"
  mkdir -p "$WORK/rootfs/usr/local/lib/node_modules"
  cp -a "$NPM_DIR" "$WORK/rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$WORK/rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$WORK/rootfs/usr/local/bin/npx"
  rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
  # this machine reaches the npm registry through a TLS proxy whose CA is in its system bundle (npm here
  # trusts it through NODE_EXTRA_CA_CERTS); the local base trusts the same bundle, or `npm ci` in the
  # build fails with SELF_SIGNED_CERT_IN_CHAIN. The published base needs nothing of the kind.
  extra_env=()
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then
    install -D -m 0644 "$NODE_EXTRA_CA_CERTS" "$WORK/rootfs/usr/local/share/weft-build/ca-bundle.crt"
    extra_env=(--env NODE_EXTRA_CA_CERTS=/usr/local/share/weft-build/ca-bundle.crt)
  fi
  ctr=$(buildah from scratch)
  buildah copy "$ctr" "$WORK/rootfs" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${extra_env[@]}" --cmd node "$ctr"
  buildah commit --rm "$ctr" "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
fi

step "podman build -f daemonset/Dockerfile --build-arg NODE_IMAGE=$BASE -t $IMAGE"
# host network: the build reaches the npm registry and Debian's mirror the way this machine does
podman build --network host -f daemonset/Dockerfile --build-arg NODE_IMAGE="$BASE" -t "$IMAGE" .
podman image inspect "$IMAGE" --format 'image {{.Id}} size {{.Size}} bytes'

step "weft --help from the image"
podman run --rm "$IMAGE" --help | head -20
if podman run --rm "$IMAGE" --help | grep -q '^ *check\b'; then
  step "weft check from the image"
  podman run --rm "$IMAGE" check || echo "(weft check reported problems: expected outside a node)"
fi
step "weft agent --help from the image"
podman run --rm "$IMAGE" agent --help | head -5

step "weft controller from the image (127.0.0.1:25012 gRPC, 127.0.0.1:25014 web)"
echo '{"node-1":"image-test-token-0123456789"}' >"$WORK/tokens.json"
podman run -d --name "$CTR" --network host -v "$WORK:/work:Z" "$IMAGE" controller \
  --state-dir /work/state --grpc-listen 127.0.0.1:25012 --web-listen 127.0.0.1:25014 \
  --bootstrap-tokens /work/tokens.json --trust-domain cluster.local >/dev/null
for i in $(seq 1 120); do
  if curl -fsS http://127.0.0.1:25014/healthz >/dev/null 2>&1; then break; fi
  if [ "$(podman inspect -f '{{.State.Running}}' "$CTR")" != true ]; then podman logs "$CTR"; echo "controller exited" >&2; exit 1; fi
  sleep 0.5
done
curl -fsS http://127.0.0.1:25014/healthz && echo
podman logs "$CTR" 2>&1 | grep -m1 'controller up'
test -s "$WORK/state/trust-bundle.pem" && echo "trust bundle written by the containerised controller"
step "agent from the image connects to it (capture needs a node: --help and the controller handshake only)"
echo "image OK: $IMAGE"
[ "$KEEP" = --keep ] || podman rmi "$IMAGE" >/dev/null || true
