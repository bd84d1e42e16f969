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

step "weft controller from the image, in a network namespace of its own (loopback only: --network none)"
echo '{"node-1":"image-test-token-0123456789"}' >"$WORK/tokens.json"
echo 'image-test-token-0123456789' >"$WORK/node-1.token"
podman run -d --name "$CTR" --network none -v "$WORK:/work:Z" "$IMAGE" controller \
  --state-dir /work/state --grpc-listen 127.0.0.1:15012 --web-listen 127.0.0.1:15014 \
  --bootstrap-tokens /work/tokens.json --trust-domain cluster.local >/dev/null
in_ctr() { podman exec "$1" node -e "fetch('http://127.0.0.1:$2').then(async (r) => { console.log(r.status, (await r.text()).slice(0, 300)); process.exit(r.ok ? 0 : 1) }, () => process.exit(1))"; }
for i in $(seq 1 120); do
  if in_ctr "$CTR" 15014/healthz >/dev/null 2>&1; then break; fi
  if [ "$(podman inspect -f '{{.State.Running}}' "$CTR")" != true ]; then podman logs "$CTR"; echo "controller exited" >&2; exit 1; fi
  sleep 0.5
done
in_ctr "$CTR" 15014/healthz
podman logs "$CTR" >"$WORK/controller.log" 2>&1 || true
grep -m1 'controller up' "$WORK/controller.log"
test -s "$WORK/state/trust-bundle.pem" && echo "trust bundle written by the containerised controller"

step "weft agent from the image, in the controller's network namespace, capture attached to a cgroup made for it"
# the agent's eBPF programs attach at a cgroup this script creates (never the machine's root cgroup), its
# the container sees the machine's cgroup2 hierarchy (as the DaemonSet mounts /sys/fs/cgroup) and is told
# to attach at that one cgroup; its pins go to a directory of the machine's bpffs made for it;
# both are removed at the end (`weft agent --uninstall` from the image, then rmdir)
CG_ROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
BPF_ROOT=$(awk '$3 == "bpf" { print $2; exit }' /proc/self/mounts)
[ -n "$CG_ROOT" ] && [ -n "$BPF_ROOT" ] || { echo "build-image: needs a cgroup2 and a bpf mount" >&2; exit 2; }
CG="$CG_ROOT/weft-image-test-$$"
PINS="$BPF_ROOT/weft-image-test-$$"
mkdir "$CG" "$PINS"
AGENT=weft-agent-$$
cleanup_agent() {
  podman rm -f "$AGENT" >/dev/null 2>&1 || true
  podman run --rm --privileged --network none -v "$PINS:/run/weft-bpf" "$IMAGE" agent --uninstall --bpffs /run/weft-bpf >/dev/null 2>&1 || true
  rm -rf "$PINS" 2>/dev/null || true
  rmdir "$CG" 2>/dev/null || true
}
trap 'cleanup_agent; cleanup' EXIT
podman run -d --name "$AGENT" --privileged --network "container:$CTR" -v "$WORK:/work:Z" -v "$CG_ROOT:/host-cgroup" -v "$PINS:/run/weft-bpf" "$IMAGE" agent \
  --node node-1 --node-ip 127.0.0.1 --outbound-ip 127.0.0.1 --controller 127.0.0.1:15012 \
  --controller-ca /work/state/trust-bundle.pem --token-file /work/node-1.token \
  --cgroup-root "/host-cgroup/$(basename "$CG")" --cgroup-layout sandbox --bpffs /run/weft-bpf --state-dir /work/agent >/dev/null
ready=""
for i in $(seq 1 120); do
  if in_ctr "$AGENT" 15021/healthz/ready >/dev/null 2>&1; then ready=1; break; fi
  if [ "$(podman inspect -f '{{.State.Running}}' "$AGENT")" != true ]; then break; fi
  sleep 0.5
done
podman logs "$AGENT" >"$WORK/agent.log" 2>&1 || true
grep -E '"(agent running|config stream up)"|"level":"error"' "$WORK/agent.log" | head -5 || true
if [ -z "$ready" ]; then tail -20 "$WORK/agent.log"; echo "the agent did not become ready" >&2; exit 1; fi
in_ctr "$AGENT" 15021/healthz/ready
in_ctr "$CTR" 15014/api/v1/agents
podman stop -t 10 "$AGENT" >/dev/null
echo "image OK: $IMAGE (controller and agent started from it, agent ready)"
[ "$KEEP" = --keep ] || podman rmi "$IMAGE" >/dev/null || true
