#!/usr/bin/env bash
# Build the Sunrank image with podman and run it with buildah, then talk to it:
# a GraphQL query and a submitComparison, checked, and a clean stop.
#
# There is no Docker engine on our machines and nothing can be pulled, so the
# python:3.11-slim base is made locally with debootstrap when missing (Debian 12,
# Python 3.11; see ../shared/notes/stack.md). `podman run` is forbidden by the
# sandbox; `buildah run` works and shares the host network.
#
# Usage: scripts/container-smoke.sh [IMAGE_TAG]     (prints size and build time)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-sunrank:smoke}
BASE=docker.io/library/python:3.11-slim
PORT=${SMOKE_PORT:-18765}
log() { printf '[smoke] %s\n' "$*" >&2; }

need=()
for tool in podman buildah debootstrap; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
    log "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! podman image exists "$BASE"; then
    log "making the base image $BASE with debootstrap"
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$rootfs" >/dev/null
    tar -C "$rootfs" -c . | podman import - "$BASE" >/dev/null
    rm -rf "$rootfs"
fi

# Only the build gets this machine's package index and CA; the Dockerfile stays generic.
mounts=(-v /etc/ssl/certs:/etc/ssl/certs:ro)
[ -e /etc/pip.conf ] && mounts+=(-v /etc/pip.conf:/etc/pip.conf:ro)
[ -d /etc/xdg/pip ] && mounts+=(-v /etc/xdg/pip:/etc/xdg/pip:ro)
log "building $TAG"
start=$(date +%s)
podman build -q --format docker --isolation=chroot --network=host "${mounts[@]}" -t "$TAG" . >/dev/null
build_s=$(( $(date +%s) - start ))
size=$(podman image inspect "$TAG" --format '{{.Size}}')
log "built in ${build_s} s; image size $((size / 1000000)) MB"

ctr=$(buildah from "$TAG")
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    buildah rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT

log "starting the container (sunrank serve --demo on 127.0.0.1:$PORT)"
buildah run --isolation chroot --env SUNRANK_PORT="$PORT" --env SUNRANK_HOST=127.0.0.1 \
    "$ctr" -- sunrank serve --demo > /tmp/sunrank-smoke.log 2>&1 &
server=$!

python3 scripts/smoke_check.py "http://127.0.0.1:$PORT" || {
    log "the container's log:"; tail -n 40 /tmp/sunrank-smoke.log >&2; exit 1; }

# SIGTERM to the server process itself (buildah would SIGKILL its child): a
# graceful stop drains requests, saves a checkpoint and exits 0.
log "stopping with SIGTERM"
pkill -TERM -f '^/opt/venv/bin/python3? /opt/venv/bin/sunrank serve'
status=0
wait "$server" || status=$?
server=""
grep -q '"checkpoint saved' /tmp/sunrank-smoke.log || { log "no checkpoint at shutdown"; exit 1; }
[ "$status" -eq 0 ] || { log "the server exited with status $status"; exit 1; }
log "stopped cleanly"
printf '{"image": "%s", "size_bytes": %s, "build_seconds": %s}\n' "$TAG" "$size" "$build_s"
