#!/bin/sh
# Install the Debian packages that building and testing oscine need, when any
# is missing. Run as root (or through sudo) on Debian 12.
set -e
PKGS="make gcc pkg-config portaudio19-dev libsndfile1-dev libfftw3-dev liblo-dev
      liblo-tools libsoxr-dev libcmocka-dev libopenblas-dev libpng-dev sox
      clang libclang-rt-14-dev jackd2 libjack-jackd2-dev
      lv2-dev ladspa-sdk liblilv-dev lilv-utils sordi lv2file pipewire pipewire-bin
      wireplumber dbus-daemon binutils ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base
      gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "deps: all packages present"
    exit 0
fi
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
