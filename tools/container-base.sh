#!/usr/bin/env bash
# The base image that the Containerfile's FROM line names, in the local image storage, so that
# `podman build` (or docker) works where no container registry can be reached.
#
#   tools/container-base.sh                  present: nothing to do; else pull it from its registry;
#                                            where that fails, make it with debootstrap (below)
#   tools/container-base.sh --debootstrap    make it with debootstrap without trying the registry
#
# debootstrap (root; `apt-get install debootstrap`) builds a minimal Debian bookworm from the Debian
# mirror apt already uses (MIRROR=... to choose another), which is imported and tagged with the FROM
# name: the same Containerfile then builds unchanged (it adds bookworm's security and updates
# suites itself). About 30 to 60 s and 200 MB. ENGINE=docker uses docker instead of podman.
# The last line printed says what happened: "present", "pulled" or "made".
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${ENGINE:-podman}
BASE=$(sed -n 's/^FROM[[:space:]]\+\([^[:space:]]\+\).*/\1/p' Containerfile | head -n 1)
[ -n "$BASE" ] || { echo "container-base: no FROM line in Containerfile" >&2; exit 1; }
command -v "$ENGINE" > /dev/null || { echo "container-base: $ENGINE is not installed (Debian: apt-get install podman)" >&2; exit 1; }

if "$ENGINE" image inspect "$BASE" > /dev/null 2>&1; then
    echo "container-base: $BASE is already here"
    echo present
    exit 0
fi
if [ "${1:-}" != --debootstrap ]; then
    echo "container-base: pulling $BASE"
    if out=$(timeout 600 "$ENGINE" pull "$BASE" 2>&1); then
        echo pulled
        exit 0
    fi
    echo "container-base: could not pull it ($(printf '%s\n' "$out" | tail -n 1)); making it with debootstrap"
fi

[ "$(id -u)" = 0 ] || { echo "container-base: debootstrap needs root (sudo $0 --debootstrap)" >&2; exit 1; }
command -v debootstrap > /dev/null || { echo "container-base: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
if [ -z "${MIRROR:-}" ]; then
    # the Debian mirror apt uses here (deb822 .sources files, then one-line .list files)
    MIRROR=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i = 2; i <= NF; i++) print $i}'
                grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | sed 's/\[[^]]*\]//' | awk '{print $2}'
              } | grep -E '/debian/?$' | head -n 1 || true)
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi
ROOTFS=$(mktemp -d "${TMPDIR:-/var/tmp}/posepipe-rootfs.XXXXXX")
trap 'rm -rf "$ROOTFS"' EXIT
echo "container-base: debootstrap --variant=minbase bookworm from $MIRROR"
if ! debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" > "$ROOTFS.log" 2>&1; then
    tail -n 20 "$ROOTFS.log" >&2
    echo "container-base: debootstrap failed (log: $ROOTFS.log)" >&2
    exit 1
fi
rm -f "$ROOTFS.log"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | "$ENGINE" import --quiet - "$BASE" > /dev/null
echo "container-base: made $BASE ($("$ENGINE" image inspect --format '{{.Size}}' "$BASE") bytes)"
echo made
