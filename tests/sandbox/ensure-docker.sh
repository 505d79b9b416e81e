#!/usr/bin/env bash
# Make a Docker engine answer on this machine, for the sandbox hosts and molecule.
#
# Exit 0 when `docker info` answers (already, or after installing Debian's docker.io and starting
# dockerd), 1 with one sentence on stderr otherwise. Safe to run again and again.
#
# dockerd is started detached (setsid/nohup) rather than through systemd because the build
# machines and CI run without systemd as PID 1 (docs: tests/sandbox/README.md).
set -euo pipefail

LOG=${DOCKERD_LOG:-/var/log/dockerd-sandbox.log}
WAIT_S=${DOCKERD_WAIT_S:-60}

docker_answers() {
    command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

fail() {
    echo "ensure-docker: $*" >&2
    exit 1
}

wait_for_engine() {
    local i
    for ((i = 0; i < WAIT_S; i++)); do
        docker_answers && return 0
        sleep 1
    done
    return 1
}

if docker_answers; then
    exit 0
fi

SOCK=/var/run/docker.sock
if [ -z "${DOCKER_HOST:-}" ] && [ -S "$SOCK" ] && ! [ -w "$SOCK" ]; then
    fail "a Docker engine is running but $(id -un) may not use $SOCK, so run this as root or add $(id -un) to the docker group."
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    fail "no Docker engine answers 'docker info' and this is not root on a Debian-like system, so install and start Docker yourself (or run this script as root on Debian/Ubuntu)."
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "ensure-docker: installing Debian's docker.io" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The package's maintainer scripts try to start the service; that may or may not work without
    # systemd, so the start below does not rely on it.
    apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
fi

# A daemon started by the package's init script (or an earlier run) may still be coming up.
if pgrep -x dockerd >/dev/null 2>&1; then
    wait_for_engine && exit 0
    fail "dockerd is running but 'docker info' does not answer within ${WAIT_S}s, so read $LOG (or stop that dockerd) and retry."
fi

mkdir -p "$(dirname "$LOG")"
echo "ensure-docker: starting dockerd, log in $LOG" >&2
setsid nohup "$(command -v dockerd)" >>"$LOG" 2>&1 </dev/null &

wait_for_engine && exit 0
fail "dockerd did not answer 'docker info' within ${WAIT_S}s, so read the end of $LOG for the cause."
