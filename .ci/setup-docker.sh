#!/usr/bin/env bash
# A Docker engine and the sandbox image, for the tests marked `docker`.
# Idempotent, and quick when all is there: installs docker.io (and debootstrap, which makes the
# image's base) only when missing, starts dockerd only when no engine answers, and
# `grader build-image` rebuilds only when the image's content hash changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

DOCKER_LOG=${GRADER_DOCKERD_LOG:-/var/log/grader-dockerd.log}

engine_answers() { timeout 10 python -c 'import docker; docker.from_env(timeout=5).ping()' >/dev/null 2>&1; }

missing=""
command -v dockerd >/dev/null 2>&1 || engine_answers || missing="$missing docker.io"
command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
if [ -n "$missing" ]; then
  echo "== installing$missing"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if ! engine_answers; then
  if pgrep -x dockerd >/dev/null 2>&1; then
    echo "== dockerd runs but does not answer yet"
  else
    echo "== starting dockerd (log: $DOCKER_LOG)"
    # A dockerd killed with the previous session leaves its pid file behind and refuses to start.
    rm -f /var/run/docker.pid
    mkdir -p "$(dirname "$DOCKER_LOG")"
    # No bridge and no iptables rules: sandboxes and builds run with network "none" anyway.
    nohup dockerd --bridge=none --iptables=false --ip6tables=false >>"$DOCKER_LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 60); do
    engine_answers && break
    sleep 1
  done
  if ! engine_answers; then
    echo "dockerd did not answer within 60 s; the end of $DOCKER_LOG:" >&2
    tail -n 30 "$DOCKER_LOG" >&2 || true
    exit 1
  fi
fi
echo "== docker engine: $(python -c 'import docker; print(docker.from_env().version()["Version"])')"

echo "== grader build-image"
grader build-image
