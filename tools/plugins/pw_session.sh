#!/bin/sh
# pw_session.sh - the desktop microphone end to end, with no sound card: a
# private, headless PipeWire + WirePlumber session (own runtime folder, own
# D-Bus, own config and state folders; the user's session is not touched)
# with the filter-chain config installed where docs/plugins.md tells users
# to put it. A loopback stands in for the microphone (the default source);
# IN is played into it while "oscine denoised microphone" is recorded.
#
#   sh tools/plugins/pw_session.sh WORK LV2_PATH CONF IN.wav
#
# Writes into WORK: rec.wav (48 kHz mono float, from the virtual source),
# dump.json (pw-dump), links.txt (pw-link -l), status.txt (wpctl status),
# dump-set.json (pw-dump after `pw-cli set-param` changed mix to 0.5 and
# limit_db to 12 on the running filter), pipewire.log, wireplumber.log. Exit status 0 when the session came up and
# the recording was made; 1 with a message saying how far it got (the
# filter is given $OSCINE_PW_WAIT tenths of a second to appear, default 100);
# 77 when pipewire, wireplumber or dbus-run-session is not installed. Used
# by tests/test_lv2.c.
set -u
if [ -z "${OSCINE_PW_SESSION:-}" ]; then
    for t in pipewire wireplumber pw-play pw-record pw-dump pw-link wpctl dbus-run-session; do
        command -v $t >/dev/null 2>&1 || { echo "pw_session: $t not installed" >&2; exit 77; }
    done
    exec env OSCINE_PW_SESSION=1 dbus-run-session -- sh "$0" "$@"
fi
WORK=$1 LV2=$2 CONF=$3 IN=$4
mkdir -p "$WORK/run" "$WORK/config/pipewire/pipewire.conf.d" \
         "$WORK/config/wireplumber/main.lua.d" "$WORK/state"
export XDG_RUNTIME_DIR="$WORK/run" PIPEWIRE_RUNTIME_DIR="$WORK/run"
export XDG_CONFIG_HOME="$WORK/config" XDG_STATE_HOME="$WORK/state" LV2_PATH="$LV2"
unset PIPEWIRE_REMOTE PIPEWIRE_CONFIG_DIR

# The daemon's own configuration: the core, a dummy clock and the test
# microphone (a loopback: what is played into "test-mic-in" comes out of
# the source "test-mic").
cat > "$WORK/config/pipewire/pipewire.conf" <<'PW'
context.properties = {
    core.daemon = true
    core.name   = pipewire-0
    default.clock.rate = 48000
}
context.spa-libs = {
    audio.convert.* = audioconvert/libspa-audioconvert
    support.*       = support/libspa-support
}
context.modules = [
    { name = libpipewire-module-protocol-native }
    { name = libpipewire-module-metadata }
    { name = libpipewire-module-spa-node-factory }
    { name = libpipewire-module-client-node }
    { name = libpipewire-module-access args = { } }
    { name = libpipewire-module-adapter }
    { name = libpipewire-module-link-factory }
    { name = libpipewire-module-loopback
        args = {
            node.description = "test microphone"
            audio.position   = [ MONO ]
            capture.props    = { node.name = "test-mic-in" media.class = "Audio/Sink" }
            playback.props   = { node.name = "test-mic" media.class = "Audio/Source"
                                 priority.session = 5000 }
        }
    }
]
context.objects = [
    { factory = metadata args = { metadata.name = default } }
    { factory = spa-node-factory
        args = {
            factory.name    = support.node.driver
            node.name       = Dummy-Driver
            priority.driver = 20000
        }
    }
]
PW
# where a user puts it
cp "$CONF" "$WORK/config/pipewire/pipewire.conf.d/oscine-denoise.conf"
# no real devices, even on a machine that has them
cat > "$WORK/config/wireplumber/main.lua.d/51-oscine-test.lua" <<'WP'
alsa_monitor.enabled = false
v4l2_monitor.enabled = false
libcamera_monitor.enabled = false
WP

pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; wait; }
trap cleanup EXIT
# Wait up to $1 tenths of a second for a command to succeed.
until_ok() {
    n=$1; shift
    while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; n=$((n - 1)); done
    return 1
}
linked() { pw-link -l 2>/dev/null | grep -q "$1"; }

pipewire > "$WORK/pipewire.log" 2>&1 &
pids="$!"
until_ok 50 test -S "$WORK/run/pipewire-0" || { echo "pw_session: pipewire did not start" >&2; exit 1; }
wireplumber > "$WORK/wireplumber.log" 2>&1 &
pids="$! $pids"
until_ok "${OSCINE_PW_WAIT:-100}" linked "capture.oscine_denoise:input_MONO" ||
    { echo "pw_session: the filter chain was not linked to the microphone" >&2; exit 1; }
pw-record --target oscine_denoise --rate 48000 --channels 1 --format f32 "$WORK/rec.wav" \
    > "$WORK/pw-record.log" 2>&1 &
rec=$!
pids="$rec $pids"
until_ok 100 linked "pw-record" || { echo "pw_session: pw-record was not linked" >&2; exit 1; }
pw-play --target test-mic-in "$IN" > "$WORK/pw-play.log" 2>&1 ||
    { echo "pw_session: pw-play failed" >&2; exit 1; }
sleep 0.5
pw-dump > "$WORK/dump.json" 2>&1
pw-link -l > "$WORK/links.txt" 2>&1
wpctl status > "$WORK/status.txt" 2>&1
# changing the controls live, as docs/plugins.md shows
id=$(pw-cli ls Node | awk '/^\tid /{id=$2} /node.name = "capture.oscine_denoise"/{print id}' | tr -dc 0-9)
pw-cli set-param "$id" Props '{ params = [ "oscine:mix" 0.5 "oscine:limit_db" 12.0 ] }' \
    > "$WORK/set-param.txt" 2>&1
sleep 0.3
pw-dump > "$WORK/dump-set.json" 2>&1
kill "$rec"
wait "$rec" 2>/dev/null
exit 0
