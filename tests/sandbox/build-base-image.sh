#!/usr/bin/env bash
# Build the Debian base image of the sandbox hosts without any registry:
# debootstrap a bookworm rootfs and `docker import` it.
#
# Usage: tests/sandbox/build-base-image.sh [--force]
# Env:   SANDBOX_MIRROR (default http://deb.debian.org/debian), SANDBOX_IMAGE_REPO
#        (default gpufleet/sandbox-base), SANDBOX_CA_BUNDLE (default the host's bundle).
# Prints the content-addressed image name on stdout; everything else goes to stderr.
#
# The tag is a hash of every input (this script, the package list, the suite, the CA bundle), so
# a run whose inputs did not change does nothing. `<repo>:<suite>` is moved to the newest build.
set -euo pipefail

SUITE=bookworm
MIRROR=${SANDBOX_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SANDBOX_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
REPO=${SANDBOX_IMAGE_REPO:-gpufleet/sandbox-base}
CA_BUNDLE=${SANDBOX_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
# systemd as PID 1, its own Docker engine (the hosts run vLLM containers), and what Ansible and
# community.docker need on a managed host.
PACKAGES=systemd,systemd-sysv,dbus,python3,sudo,ca-certificates,iproute2,docker.io,python3-docker,python3-requests

FORCE=0
[ "${1:-}" = --force ] && FORCE=1

log() { echo "build-base-image: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "debootstrap needs root, so run this script as root."; exit 1; }
docker info >/dev/null 2>&1 || { log "no Docker engine answers, so run tests/sandbox/ensure-docker.sh first."; exit 1; }

ca_sum=none
[ -r "$CA_BUNDLE" ] && ca_sum=$(sha256sum <"$CA_BUNDLE" | cut -c1-64)
input_sum=$(
    {
        sha256sum <"${BASH_SOURCE[0]}"
        echo "$SUITE" "$PACKAGES" "$ca_sum"
    } | sha256sum | cut -c1-12
)
IMAGE=$REPO:$SUITE-$input_sum
STABLE=$REPO:$SUITE

if [ "$FORCE" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    docker tag "$IMAGE" "$STABLE"
    log "$IMAGE exists, inputs unchanged"
    echo "$IMAGE"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || { log "debootstrap is missing and there is no apt-get, so install debootstrap yourself."; exit 1; }
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# debootstrap must build on a filesystem that allows device nodes and suid files, so not /tmp
# when that is a nodev tmpfs.
WORK=$(mktemp -d "${SANDBOX_WORKDIR:-/var/tmp}/sandbox-rootfs.XXXXXX")
ROOTFS=$WORK/rootfs
cleanup() {
    # A failed debootstrap can leave /proc or /sys mounted inside the rootfs.
    local m
    for m in proc sys dev/pts dev; do
        if mountpoint -q "$ROOTFS/$m" 2>/dev/null; then
            umount -l "$ROOTFS/$m" || true
        fi
    done
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

start=$SECONDS
log "debootstrap $SUITE from $MIRROR into $ROOTFS"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -20 "$WORK/debootstrap.log" >&2
    log "debootstrap failed (log above), so check that $MIRROR is reachable."
    exit 1
}
log "debootstrap took $((SECONDS - start))s"

# --- Configure the rootfs -------------------------------------------------------------------
cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES

# TLS goes through an intercepting proxy on the build machines: hosts (and images saved from
# them) reach PyPI and https mirrors only with the machine's bundle. update-ca-certificates inside
# would rebuild the Debian bundle, so the machine's bundle is also registered as a local CA.
if [ -r "$CA_BUNDLE" ] && ! cmp -s "$CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"; then
    log "installing the machine's CA bundle (differs from Debian's)"
    cp "$CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
    mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
    cp "$CA_BUNDLE" "$ROOTFS/usr/local/share/ca-certificates/build-machine-bundle.crt"
fi

# Services started at boot: the inner Docker engine. dh_installsystemd's postinst does not always
# create these links when run under debootstrap, so make sure.
wants=$ROOTFS/etc/systemd/system/multi-user.target.wants
sockets=$ROOTFS/etc/systemd/system/sockets.target.wants
mkdir -p "$wants" "$sockets"
ln -sfn /lib/systemd/system/containerd.service "$wants/containerd.service"
ln -sfn /lib/systemd/system/docker.service "$wants/docker.service"
ln -sfn /lib/systemd/system/docker.socket "$sockets/docker.socket"

# Units that cannot work in a container and would leave the system "degraded".
for unit in \
    getty@tty1.service console-getty.service serial-getty@.service \
    systemd-remount-fs.service systemd-firstboot.service \
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    dev-hugepages.mount proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
    systemd-binfmt.service systemd-modules-load.service systemd-sysctl.service \
    systemd-hwdb-update.service systemd-udevd.service systemd-udev-trigger.service \
    systemd-pstore.service; do
    ln -sfn /dev/null "$ROOTFS/etc/systemd/system/$unit"
done

# Each container gets its own machine id at boot.
: >"$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"

# Keep the image small; hosts run `apt-get update` before installing anything.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin \
    "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old \
    "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/* \
    "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/*
find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
mkdir -p "$ROOTFS/var/lib/apt/lists/partial"

log "rootfs: $(du -sh --one-file-system "$ROOTFS" | cut -f1)"

# --- Import ---------------------------------------------------------------------------------
# Docker 20.10's import accepts no STOPSIGNAL change: containers set stop_signal SIGRTMIN+3
# themselves (systemd halts on it; on SIGTERM it would re-execute and be killed after the timeout).
start=$SECONDS
tar --numeric-owner --xattrs -C "$ROOTFS" -c . | docker import \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change 'ENV container=docker' \
    --change "LABEL org.opencontainers.image.title=gpufleet-sandbox-base org.gpufleet.sandbox.inputs=$input_sum org.gpufleet.sandbox.suite=$SUITE" \
    --message "debootstrap $SUITE ($input_sum)" \
    - "$IMAGE" >/dev/null
docker tag "$IMAGE" "$STABLE"
log "import took $((SECONDS - start))s"
echo "$IMAGE"
