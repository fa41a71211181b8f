#!/bin/sh
# Build the Debian bookworm base image from a debootstrap rootfs: there is no registry to pull
# from, so every image in the e2e run starts here. The rootfs tarball is cached, so the slow
# debootstrap runs once per machine.
set -eu

NAME="${BASE_IMAGE:-nilecare/debian:bookworm}"
CACHE="${NILECARE_CACHE:-/var/cache/nilecare}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TARBALL="$CACHE/bookworm-minbase.tar"

if docker image inspect "$NAME" >/dev/null 2>&1; then
    echo "base image $NAME already present"
    exit 0
fi

mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
    ROOT="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    trap 'rm -rf "$ROOT"' EXIT
    debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR"
    # Containers reach only the plain-http mirror; keep apt lists out of the image.
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$MIRROR" "$MIRROR" \
        > "$ROOT/etc/apt/sources.list"
    rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/archives/*.deb
    tar -C "$ROOT" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
fi
docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' "$TARBALL" "$NAME"
echo "built $NAME"
