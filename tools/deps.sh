#!/bin/sh
# Install the Debian 12 packages oscine needs, those that are missing, with
# nothing but a POSIX shell and apt (a stock Debian has no make, compiler or
# pkg-config). As root, or through sudo; says what to do where neither works.
#
#   sh tools/deps.sh [build|test] [--check]
#
#   build  the compiler, make, pkg-config and the libraries: enough for
#          `make` and `make demo`
#   test   (default) build plus what `make test`, `make asan` and `make fuzz`
#          use: cmocka, clang, JACK, PipeWire, LV2/LADSPA hosts, sox,
#          ffmpeg, GStreamer
#   --check  install nothing: name what is missing (exit 1) or exit 0 (also
#          where there is no dpkg to ask)
#
# What a stock Debian 12 root gets is measured in the README ("Set up").
set -eu
BUILD_PKGS="make gcc libc6-dev pkg-config portaudio19-dev libsndfile1-dev libfftw3-dev
            liblo-dev libsoxr-dev libopenblas-dev libpng-dev lv2-dev ladspa-sdk"
TEST_PKGS="libcmocka-dev liblo-tools sox clang libclang-rt-14-dev jackd2 libjack-jackd2-dev
           liblilv-dev lilv-utils sordi lv2file pipewire pipewire-bin wireplumber dbus-daemon
           binutils ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base
           gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"

set_name=test check=0
for a in "$@"; do
    case "$a" in
    build | test) set_name=$a ;;
    --check) check=1 ;;
    *) echo "deps: unknown argument '$a' (usage: sh tools/deps.sh [build|test] [--check])" >&2
       exit 2 ;;
    esac
done
PKGS=$BUILD_PKGS
[ "$set_name" = test ] && PKGS="$BUILD_PKGS $TEST_PKGS"

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    [ "$check" = 1 ] && exit 0 # not Debian: nothing to check against
    echo "deps: no dpkg/apt-get here: this script is for Debian 12; install the" \
         "equivalents of:" $PKGS >&2
    exit 1
fi

missing() {
    m=""
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            m="$m $p"
    done
    echo "$m"
}
todo=$(missing)
if [ -z "$todo" ]; then
    [ "$check" = 1 ] || echo "deps: all $set_name packages present"
    exit 0
fi
if [ "$check" = 1 ]; then
    echo "deps: missing$todo (install them with: sh tools/deps.sh $set_name)" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
    echo "deps: installing through sudo (it may ask for your password)"
else
    echo "deps: installing packages needs root, and sudo is not installed: run" \
         "'su -c \"sh tools/deps.sh $set_name\"' (the root password), then run this" \
         "command again; missing:$todo" >&2
    exit 1
fi
as_root() {
    if ! $SUDO "$@"; then
        if [ -n "$SUDO" ]; then
            echo "deps: 'sudo $*' failed: if sudo refused you, ask an administrator to run" \
                 "'sh tools/deps.sh $set_name' as root (or to add you to the sudo group)" >&2
        else
            echo "deps: '$*' failed (see apt's message above)" >&2
        fi
        exit 1
    fi
}

echo "deps: installing$todo"
# env: sudo resets the environment, and apt must not stop to ask questions
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $todo
left=$(missing)
if [ -n "$left" ]; then
    echo "deps: still missing after apt-get:$left" >&2
    exit 1
fi
echo "deps: done"
