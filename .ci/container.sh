#!/usr/bin/env bash
# CI: build the cpu image from the repository's Containerfile with podman, run the real workflow in
# it without network, check the render, and run the test suite in it.
#
#   .ci/container.sh            (root, Debian/Ubuntu with apt; about 10 minutes on 2 cores)
#   KEEP_IMAGE=1 .ci/container.sh   keeps the image (localhost/posepipe:ci) and its base afterwards
#   PYTEST_ARGS="..." .ci/container.sh   more arguments for the test suite's run in the image
#
# Steps:
#  1. podman, buildah, runc and debootstrap from apt (where missing). Not root, or no apt-get, or
#     apt cannot install them: the script prints why and exits 0 (skipped).
#  2. No registry is reachable from CI, so the base image the Containerfile's FROM names
#     (docker.io/library/debian:bookworm-slim) is made here from Debian's own packages by
#     tools/container-base.sh --debootstrap (what `make image` runs for users): debootstrap
#     --variant=minbase from the mirror apt already uses, imported and tagged with that name. The
#     same Containerfile then builds here and on a user's machine. An image of that name that was
#     already there is used as it is and left alone.
#  3. podman build --layers=false --no-cache (nothing cached across runs). pip in the build is
#     configured like this machine's pip: its settings (pip config list, PIP_* variables) go in as
#     --build-arg PIP_*, and the local paths they name (wheel folders, file:// indexes, constraint
#     and CA files) as read-only build volumes under /host-pip, so none of it ends up in the image.
#     When this machine's pip provides torch's CPU build, the Containerfile's extra torch index is
#     turned off (TORCH_INDEX_URL=) so that no other host is asked.
#  4. posepipe.testing makes a short clip, its COCO keypoints and a small random lifter checkpoint in
#     a temporary /work; the image's default command runs the workflow on it with --network=none;
#     summary.csv must say complete and render.mp4 must have the timeline's frame count (counted
#     by decoding, inside the container).
#  5. With the sample clip of the test data (tests/data/media/dance.mp4 and dance.coco.json)
#     and a .venv that has snakemake: the same run on the dance clip inside and outside
#     the container, with both wall times printed (a measurement, not a check).
#  6. The test suite inside the image (--network=none), without the slurm and detectron2 markers
#     and without the workflow-marked tests: steps 4 and 5 already run the workflow in the image,
#     and the workflow tests run outside it in the same CI run (their Snakemake runs are most of
#     the suite's time). PYTEST_ARGS="-m 'not slurm and not detectron2'" runs them all.
#  7. Cleanup, also on failure or interrupt: the containers this script started, its build
#     containers, its temporary folder, and (unless KEEP_IMAGE=1) the image and the base image it
#     made. Packages installed in step 1 stay.
#
# podman runs with a private containers.conf (CONTAINERS_CONF; nothing under /etc is changed): runc
# (crun fails on hybrid cgroups) and default ulimits the sandbox may set.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
IMAGE=${IMAGE:-localhost/posepipe:ci}
NAME=posepipe-ci-$$
T0=$SECONDS

say() { printf 'container: %s\n' "$*"; }
skip() {
    say "SKIPPED: $*"
    exit 0
}
took() { printf '%d s' "$((SECONDS - $1))"; }

# --- 1. tools ------------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "not root (podman is installed with apt-get and the base image is made with debootstrap)"
missing=()
for tool in podman buildah runc debootstrap; do
    command -v "$tool" > /dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get > /dev/null || skip "no apt-get to install ${missing[*]}"
    say "installing podman buildah runc debootstrap with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q podman buildah runc debootstrap > /dev/null 2>&1; then
        apt-get update -q > /dev/null 2>&1 || true
        apt-get install -y -q podman buildah runc debootstrap > /dev/null 2>&1 ||
            skip "apt-get could not install podman buildah runc debootstrap (offline mirror?)"
    fi
fi

# --- state for cleanup ---------------------------------------------------------------------------
TMP=$(mktemp -d /var/tmp/posepipe-container.XXXXXX)
STARTED=()       # container names this script gave to podman run
MADE_BASE=""     # the base image, when this script made it
MADE_IMAGE=""    # the image, once the build started
BUILD_BEFORE=$(buildah containers -q 2> /dev/null | sort || true)
CHILD=""         # the long command running now (see bg)

# Long commands run in the background and are waited for, so that a signal reaches the trap at
# once (bash runs traps only between foreground commands); cleanup stops the command first.
bg() {
    local status=0
    "$@" &
    CHILD=$!
    wait "$CHILD" || status=$?
    CHILD=""
    return "$status"
}

cleanup() {
    local status=$?
    set +e
    if [ -n "$CHILD" ]; then
        kill -TERM "$CHILD" 2> /dev/null
        wait "$CHILD" 2> /dev/null
    fi
    for name in "${STARTED[@]}"; do
        podman container exists "$name" 2> /dev/null && podman rm -f -t 5 "$name" > /dev/null 2>&1
    done
    # build containers left by an interrupted build (buildah removes them itself otherwise)
    comm -13 <(printf '%s\n' "$BUILD_BEFORE") <(buildah containers -q 2> /dev/null | sort) |
        while read -r id; do [ -n "$id" ] && buildah rm "$id" > /dev/null 2>&1; done
    if [ "${KEEP_IMAGE:-0}" = 1 ]; then
        if [ -n "$MADE_IMAGE" ] && podman image exists "$MADE_IMAGE" 2> /dev/null; then
            say "kept image $MADE_IMAGE${MADE_BASE:+ and its base $MADE_BASE} (KEEP_IMAGE=1)"
        elif [ -n "$MADE_BASE" ]; then
            say "kept the base image $MADE_BASE (KEEP_IMAGE=1)"
        fi
    else
        [ -n "$MADE_IMAGE" ] && podman image exists "$MADE_IMAGE" 2> /dev/null && podman rmi -f "$MADE_IMAGE" > /dev/null 2>&1
        [ -n "$MADE_BASE" ] && podman image exists "$MADE_BASE" 2> /dev/null && podman rmi -f "$MADE_BASE" > /dev/null 2>&1
    fi
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat > "$TMP/containers.conf" << 'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$TMP/containers.conf

# podman run --network=none under a name this script removes again (also when `timeout` stops
# the podman client after LIMIT seconds and the container is left running)
run_in() {
    local name=$NAME-$1
    shift
    STARTED+=("$name")
    bg timeout "${LIMIT:-900}" podman run --rm --name "$name" --network=none "$@"
}

# --- 2. base image -------------------------------------------------------------------------------
BASE=$(sed -n 's/^FROM[[:space:]]\+\([^[:space:]]\+\).*/\1/p' Containerfile | head -n 1)
[ -n "$BASE" ] || { say "no FROM line in Containerfile"; exit 1; }
apt_uris() {
    grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i = 2; i <= NF; i++) print $i}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
        sed 's/\[[^]]*\]//' | awk '{print $2}'
}
MIRROR=$(apt_uris | grep -E '/debian/?$' | head -n 1 || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=$(apt_uris | grep -E '/debian-security/?$' | head -n 1 || true)
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}
if podman image exists "$BASE"; then
    say "base image $BASE is already here: using it as it is"
else
    # the same script users run (make image): here straight to debootstrap, from the mirror above
    t=$SECONDS
    MADE_BASE=$BASE
    if ! bg env TMPDIR="$TMP" MIRROR="$MIRROR" timeout 900 tools/container-base.sh --debootstrap > "$TMP/base.log" 2>&1; then
        tail -n 20 "$TMP/base.log"
        say "making the base image failed"
        exit 1
    fi
    say "base image made in $(took "$t"): $(podman image inspect --format '{{.Size}}' "$BASE") bytes"
fi

# --- 3. build ------------------------------------------------------------------------------------
HOSTPY=python3
if [ -x .venv/bin/python ]; then HOSTPY=.venv/bin/python; fi
BUILD_ARGS=(--build-arg FLAVOUR=cpu --build-arg "DEBIAN_MIRROR=$MIRROR" --build-arg "DEBIAN_SECURITY_MIRROR=$SECURITY")
declare -A PIPCONF=()
declare -A MOUNTED=()
if "$HOSTPY" -m pip --version > /dev/null 2>&1; then
    # files in the order pip reads them: a later one overrides an earlier one; PIP_* variables last
    while IFS= read -r line; do
        key=${line%%=*}
        value=${line#*=}
        value=${value#\'}
        value=${value%\'}
        case "$key" in :env:.*) continue ;; esac
        PIPCONF[${key#*.}]=$value
    done < <("$HOSTPY" -m pip config list 2> /dev/null || true)
fi
for key in index-url extra-index-url find-links constraint cert trusted-host default-timeout timeout; do
    var=PIP_$(printf '%s' "$key" | tr 'a-z-' 'A-Z_')
    if [ -n "${!var:-}" ]; then PIPCONF[$key]=${!var}; fi
done
if [ -n "${PIPCONF[timeout]:-}" ]; then
    PIPCONF[default-timeout]=${PIPCONF[default-timeout]:-${PIPCONF[timeout]}}
    unset 'PIPCONF[timeout]'
fi
# A local path (or file:// URL) is mounted read-only at /host-pip<path>; a file comes with its
# folder, and an index folder named "simple" with its parent (its pages link to ../../files/...).
host_path() {  # sets HOST_PATH (not printed: a $(...) subshell would lose the mounts)
    local token=$1 path prefix="" src
    case "$token" in
        file://*) prefix=file:// path=${token#file://} ;;
        /*) path=$token ;;
        *) HOST_PATH=$token; return ;;
    esac
    src=$path
    # a file goes in with its folder
    if [ "$(basename "$path")" = simple ] || [ -f "$path" ]; then src=$(dirname "$path"); fi
    if [ -e "$src" ] && [ -z "${MOUNTED[$src]:-}" ]; then
        MOUNTED[$src]=1
        BUILD_ARGS+=(-v "$src:/host-pip$src:ro")
    fi
    HOST_PATH=$prefix/host-pip$path
}
for key in "${!PIPCONF[@]}"; do
    case "$key" in
        index-url | extra-index-url | find-links | constraint | cert | trusted-host | default-timeout) ;;
        *) say "host pip setting $key is not passed to the build"; continue ;;
    esac
    value=""
    for token in ${PIPCONF[$key]}; do
        host_path "$token"
        value+="${value:+ }$HOST_PATH"
    done
    BUILD_ARGS+=(--build-arg "PIP_$(printf '%s' "$key" | tr 'a-z-' 'A-Z_')=$value")
done
# torch: the Makefile's TEST_TORCH. Where this machine's pip already finds its CPU build, the
# Containerfile's extra index (download.pytorch.org) is not needed.
TEST_TORCH=$(sed -n 's/^TEST_TORCH ?= //p' Makefile)
if "$HOSTPY" -m pip --version > /dev/null 2>&1 &&
    timeout 300 "$HOSTPY" -m pip install --dry-run --no-deps --ignore-installed -q --report "$TMP/torch.json" \
        "$TEST_TORCH" > /dev/null 2>&1 &&
    grep -q '"version": "[^"]*+cpu"' "$TMP/torch.json"; then
    say "this machine's pip provides torch's CPU build ($TEST_TORCH): no extra torch index"
    BUILD_ARGS+=(--build-arg TORCH_INDEX_URL=)
fi
printf 'container: build arguments:'
printf ' %q' "${BUILD_ARGS[@]}"
printf '\n'

t=$SECONDS
MADE_IMAGE=$IMAGE
if ! bg timeout 2400 podman build --pull=never --layers=false --no-cache -f Containerfile -t "$IMAGE" \
    "${BUILD_ARGS[@]}" . > "$TMP/build.log" 2>&1; then
    tail -n 40 "$TMP/build.log"
    say "podman build failed after $(took "$t")"
    exit 1
fi
BUILD_S=$((SECONDS - t))
SIZE=$(podman image inspect --format '{{.Size}}' "$IMAGE")
say "built $IMAGE in ${BUILD_S} s: $((SIZE / 1000000)) MB ($SIZE bytes)"

# --- 4. the workflow on a short clip, no network -------------------------------------------------
WORK=$TMP/work
mkdir -p "$WORK"
run_in data -v "$WORK:/work" "$IMAGE" python -c '
from posepipe.testing import add_video, random_checkpoint
add_video("/work", "clip", frames=48, width=160, height=120, fps=25, seed=3)
random_checkpoint("/work/lifter.bin")
'
cat > "$WORK/settings.yaml" << 'EOF'
keypoints2d: {source: file}
lift3d: {checkpoint: lifter.bin}
render: {height: 240}
EOF
t=$SECONDS
if ! run_in workflow -v "$WORK:/work" "$IMAGE" > "$TMP/workflow.log" 2>&1; then
    tail -n 40 "$TMP/workflow.log"
    say "the workflow failed in the container"
    exit 1
fi
say "workflow in the container (default command, --network=none): $(took "$t")"
run_in check -v "$WORK:/work:ro" "$IMAGE" python -c '
import csv, json, sys
import av
timeline = json.load(open("/work/results/clip/frames/timeline.json"))["frame_count"]
with av.open("/work/results/clip/render.mp4") as video:
    rendered = sum(1 for _ in video.decode(video=0))
rows = list(csv.DictReader(open("/work/results/summary.csv")))
status = {row["video"]: row["status"] for row in rows}
print(f"container: render.mp4 has {rendered} frames, the timeline {timeline}; summary: {status}")
sys.exit(0 if rendered == timeline == 48 and status == {"clip": "complete"} else 1)
' || { say "the render or the summary is wrong"; exit 1; }

# --- 5. run time inside and outside the container (the sample dance clip of tests/data) ----------
MEDIA=$REPO/tests/data/media
if [ -f "$MEDIA/dance.mp4" ] && [ -f "$MEDIA/dance.coco.json" ] && [ -x .venv/bin/snakemake ]; then
    for where in inside outside; do
        mkdir -p "$TMP/dance-$where/videos"
        cp "$MEDIA/dance.mp4" "$MEDIA/dance.coco.json" "$TMP/dance-$where/videos/"
        cp "$WORK/lifter.bin" "$TMP/dance-$where/"
        printf '%s\n' 'keypoints2d: {source: file}' 'lift3d: {checkpoint: lifter.bin}' > "$TMP/dance-$where/settings.yaml"
    done
    t=$SECONDS
    run_in dance -v "$TMP/dance-inside:/work" "$IMAGE" > "$TMP/dance-inside.log" 2>&1 ||
        { tail -n 30 "$TMP/dance-inside.log"; say "dance clip failed in the container"; exit 1; }
    inside=$((SECONDS - t))
    t=$SECONDS
    bg env -C "$TMP/dance-outside" timeout 900 "$REPO/.venv/bin/snakemake" --snakefile "$REPO/Snakefile" \
        --directory . --profile "$REPO/profiles/workstation" --configfile settings.yaml > "$TMP/dance-outside.log" 2>&1 ||
        { tail -n 30 "$TMP/dance-outside.log"; say "dance clip failed outside the container"; exit 1; }
    outside=$((SECONDS - t))
    say "dance.mp4 (525 frames, imported keypoints, small lifter, 720p render): ${inside} s in the container, ${outside} s outside"
else
    say "no tests/data/media/dance.mp4 (or no .venv): no inside/outside timing"
fi

# --- 6. the test suite in the image (without the workflow-marked tests, see the header) ----------
t=$SECONDS
# shellcheck disable=SC2086 # PYTEST_ARGS: more pytest arguments, split at spaces (as in the Makefile)
# tests/test_opensim.py runs in a pytest process of its own, as in `make test` (tests/conftest.py).
for apart in "" tests/test_opensim.py; do
    # shellcheck disable=SC2086 # as above; $apart: empty, or the module that runs alone
    LIMIT=2400 run_in pytest -w /opt/posepipe "$IMAGE" python -m pytest -q \
        -m "not slurm and not detectron2 and not workflow" -p no:cacheprovider --durations=5 ${PYTEST_ARGS:-} $apart ||
        { say "the test suite failed in the container${apart:+ ($apart)}"; exit 1; }
done
say "test suite in the container: $(took "$t")"
say "done in $(took "$T0") (build ${BUILD_S} s, image $((SIZE / 1000000)) MB)"
