#!/usr/bin/env bash
# Build the three images on a Debian machine without Docker Hub, then run the CPU worker and the
# web image. Needs root, podman, runc and mmdebstrap (apt-get install -y podman runc mmdebstrap).
# Not part of `make test`: it downloads a Debian base and every wheel, and takes minutes.
#
#   bash deploy/images/build.sh [build|run|all]   (default all)
#
# The base is Debian bookworm made by mmdebstrap (python3, python3-venv, ca-certificates) and
# imported into podman as localhost/ebbtide-base:bookworm; the Dockerfiles take it as BASE.
# podman keeps its own storage under $EBBTIDE_PODMAN_DIR (vfs driver: works inside containers)
# and a containers.conf there: no default ulimits (setrlimit is refused in unprivileged
# containers), host network, runc (crun refuses a hybrid cgroup v1/v2 host).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
state="${EBBTIDE_PODMAN_DIR:-/var/tmp/ebbtide-podman}"
base="localhost/ebbtide-base:bookworm"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$state"
export CONTAINERS_CONF="$state/containers.conf"
cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = []
netns = "host"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
pod() { podman --root "$state/storage" --runroot "$state/run" --storage-driver vfs "$@"; }

make_base() {
  if pod image exists "$base"; then return; fi
  echo "== base: mmdebstrap bookworm -> $base"
  mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --aptopt='Acquire::Languages "none"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$state/base.tar" "$mirror"
  pod import "$state/base.tar" "$base"
  rm -f "$state/base.tar"
}

build() {
  make_base
  # a TLS-intercepting proxy's CA (set EBBTIDE_BUILD_CA or PIP_CERT): mounted for the RUN steps
  # only, so pip trusts it while building; nothing of it stays in the images
  local mounts=() ca="${EBBTIDE_BUILD_CA:-${PIP_CERT:-}}"
  if [ -n "$ca" ] && [ -f "$ca" ]; then
    printf '[global]\ncert = /etc/ssl/certs/build-ca.crt\n' >"$state/pip.conf"
    mounts=(-v "$ca:/etc/ssl/certs/build-ca.crt:ro" -v "$state/pip.conf:/etc/pip.conf:ro")
  fi
  for kind in worker worker-gpu web; do
    echo "== build ebbtide/$kind"
    # docker format: OCI images drop HEALTHCHECK
    pod build --format docker --network host --build-arg "BASE=$base" "${mounts[@]}" \
      -f "$root/deploy/Dockerfile.$kind" -t "localhost/ebbtide/$kind:dev" "$root"
  done
  pod images | grep -E '^(REPOSITORY|localhost/ebbtide)'
}

wait_health() {  # container name: until `podman healthcheck run` says healthy (60 s)
  for _ in $(seq 60); do
    if pod healthcheck run "$1" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  pod logs "$1" | tail -20
  return 1
}

run() {
  work="$(mktemp -d)"
  web=""
  trap 'test -z "$web" || pod rm -f "$web" >/dev/null; rm -rf "$work"' RETURN
  chown 10001 "$work"
  cat >"$work/ebbtide.yaml" <<YAML
data_dir: /data/ebbtide-data
media:
  rungs: [{height: 144, bitrate_kbps: 200}]
YAML
  chown 10001 "$work/ebbtide.yaml"
  # (vfs copies the image for each container: the steps are grouped to keep the runs few)
  cpu=(pod run --rm --no-healthcheck -v "$work:/data" -w /data -e EBBTIDE_CONFIG=/data/ebbtide.yaml
    localhost/ebbtide/worker:dev)
  echo "== worker: its HEALTHCHECK command; generate a clip and submit it"
  "${cpu[@]}" sh -c 'ebbtide config check && python -c "from pathlib import Path; from ebbtide.media.samples import generate_clip; generate_clip(Path(\"/data/clip.mp4\"), seconds=2, width=320, height=240)" && ebbtide submit /data/clip.mp4 --no-follow'
  echo "== worker: ENTRYPOINT + CMD with --once takes the job"
  "${cpu[@]}" ebbtide worker --once
  playlists="$(find "$work/ebbtide-data" -name '*.m3u8' | wc -l)"
  echo "playlists written by the container: $playlists"
  test "$playlists" -ge 2
  echo "== worker-gpu: the ffmpeg it runs has NVENC and the cuda hwaccel (no GPU here: not run)"
  pod run --rm --no-healthcheck localhost/ebbtide/worker-gpu:dev sh -c \
    'f=$(python -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"); "$f" -hide_banner -encoders | grep -q h264_nvenc && "$f" -hide_banner -hwaccels | grep -q cuda && echo "h264_nvenc, cuda: present"'
  echo "== web: ebbtide serve answers /health, HEALTHCHECK says healthy"
  port="${EBBTIDE_SMOKE_PORT:-18765}"
  web="ebbtide-web-smoke-$$"
  # --health-interval=disable: no systemd timer here; `podman healthcheck run` runs the image's check
  pod run -d --health-interval=disable --name "$web" -v "$work:/data" -w /data -e EBBTIDE_CONFIG=/data/ebbtide.yaml \
    -e EBBTIDE_WEB__HOST=127.0.0.1 -e "EBBTIDE_WEB__PORT=$port" localhost/ebbtide/web:dev >/dev/null
  wait_health "$web" || { echo "web HEALTHCHECK never passed" >&2; return 1; }
  python3 -c "import json, urllib.request; print(json.load(urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=5)))"
  echo "images built and run"
}

case "${1:-all}" in
  build) build ;;
  run) run ;;
  all) build; run ;;
  *) echo "usage: $0 [build|run|all]" >&2; exit 2 ;;
esac
