#!/bin/sh
# tools/install.sh install|uninstall - what `make install` and `make
# uninstall` do (the Makefile passes DESTDIR, PREFIX, BUILD, VERSION,
# LV2_FILES, PC_PRIVATE and PC_MVEC).
#
# install copies into $DESTDIR$PREFIX: bin/oscine, lib/liboscine.{a,so*},
# include/oscine.h, lib/pkgconfig/oscine.pc, share/oscine/{models,presets},
# the plugins (lib/lv2/oscine.lv2/, lib/ladspa/oscine_denoise_ladspa.so), the
# systemd user unit (share/systemd/user/oscine.service, a folder systemd
# searches for PREFIX /usr, /usr/local and ~/.local) and the PipeWire configs
# (share/oscine/pipewire/). Only the unit, the LADSPA PipeWire config and the
# .pc file name PREFIX; the programs and plugins find share/oscine beside
# them wherever the tree is (src/base/paths.c).
#
# It lists what it installed and the folders it made (they did not exist
# before) in share/oscine/installed.txt, relative to $DESTDIR$PREFIX
# ("file bin/oscine", "dir lib/ladspa"; a folder above PREFIX absolute), kept
# across reinstalls. uninstall removes those files, then those folders where
# they are empty: never a folder that holds anything else.
set -eu
action=${1:-}
: "${DESTDIR=}" "${PREFIX:?}" "${BUILD:=build}" "${VERSION:?}"
: "${LV2_FILES=}" "${PC_PRIVATE=}" "${PC_MVEC=}"

case "$PREFIX" in
/*) ;;
*) echo "install: PREFIX must be an absolute path (got '$PREFIX')" >&2; exit 2 ;;
esac
case "$DESTDIR$PREFIX" in
*[[:space:]]*) echo "install: DESTDIR and PREFIX must not contain spaces" >&2; exit 2 ;;
esac
prefix=$(printf '%s' "$PREFIX" | sed -e 's|//*|/|g' -e 's|/$||')
[ -n "$prefix" ] || { echo "install: PREFIX=/ is not supported (try /usr)" >&2; exit 2; }
root=$DESTDIR$prefix
manifest=share/oscine/installed.txt
major=${VERSION%%.*}

# How the list names a folder: "." for $root, "a/b" below it, and the
# absolute path (without DESTDIR) of one above it, which stays behind when
# the tree is moved and is removed only by an uninstall from below it.
rel_of() {
    case "$1" in
    "$root") echo . ;;
    "$root"/*) echo "${1#"$root"/}" ;;
    *) echo "${1#"$DESTDIR"}" ;;
    esac
}

if [ "$action" = install ]; then
    files="" dirs=""
    if [ -f "$root/$manifest" ]; then # an earlier install: keep its list
        dirs=$(sed -n 's/^dir //p' "$root/$manifest")
        files=$(sed -n 's/^file //p' "$root/$manifest")
    fi
    mkd() { # mkd REL...: make $root/REL and its parents, noting each one made
        for rel in "$@"; do
            new="" d="$root/$rel"
            while [ ! -d "$d" ] && [ "$d" != "$DESTDIR" ]; do new="$d $new"; d=$(dirname "$d"); done
            [ -z "$DESTDIR" ] || mkdir -p "$DESTDIR" # a staging folder: the packager's
            for d in $new; do
                mkdir "$d"
                dirs="$dirs
$(rel_of "$d")"
            done
        done
    }
    note() { files="$files
$1"; }
    put() { # put MODE SRC REL
        install -m "$1" "$2" "$root/$3"
        note "$3"
    }
    gen() { # gen REL COMMAND...: the command's output into the file (mode 644)
        rel=$1
        shift
        "$@" > "$root/$rel.tmp"
        chmod 644 "$root/$rel.tmp"
        mv -f "$root/$rel.tmp" "$root/$rel"
        note "$rel"
    }
    mkd bin lib include lib/pkgconfig share/oscine/models share/oscine/presets \
        share/oscine/pipewire share/systemd/user lib/lv2/oscine.lv2 lib/ladspa
    put 755 "$BUILD/oscine" bin/oscine
    put 644 "$BUILD/liboscine.a" lib/liboscine.a
    put 755 "$BUILD/liboscine.so" "lib/liboscine.so.$VERSION"
    for l in "liboscine.so.$major" liboscine.so; do
        ln -sf "liboscine.so.$VERSION" "$root/lib/$l"
        note "lib/$l"
    done
    put 644 include/oscine.h include/oscine.h
    gen lib/pkgconfig/oscine.pc sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$VERSION|" \
        -e "s|@PRIVATE@|$PC_PRIVATE|" -e "s|@MVEC@|$PC_MVEC|" tools/oscine.pc.in
    for f in models/* presets/*; do
        [ -f "$f" ] && put 644 "$f" "share/oscine/$f"
    done
    gen share/systemd/user/oscine.service \
        sed "s|/usr/local/bin/oscine|$prefix/bin/oscine|" dist/systemd/oscine.service
    gen share/oscine/pipewire/oscine-denoise.conf cat dist/pipewire/oscine-denoise.conf
    gen share/oscine/pipewire/oscine-denoise-ladspa.conf \
        sed "s|/usr/local/lib/ladspa/|$prefix/lib/ladspa/|" dist/pipewire/oscine-denoise-ladspa.conf
    for f in $LV2_FILES; do
        case "$f" in *.so) m=755 ;; *) m=644 ;; esac
        put $m "$f" "lib/lv2/oscine.lv2/$(basename "$f")"
    done
    put 755 "$BUILD/oscine_denoise_ladspa.so" lib/ladspa/oscine_denoise_ladspa.so
    list() {
        echo "# written by make install (tools/install.sh): what make uninstall removes"
        printf '%s\n' "$dirs" | sed '/^$/d' | awk '!seen[$0]++' | sed 's/^/dir /'
        printf '%s\n' "$files" | sed '/^$/d' | awk '!seen[$0]++' | sed 's/^/file /'
    }
    gen "$manifest" list
    echo "install: oscine $VERSION in $root (list: $root/$manifest)"
elif [ "$action" = uninstall ]; then
    # Folders oscine alone uses: removed when empty even if the list is lost.
    own="share/oscine/models share/oscine/presets share/oscine/pipewire share/oscine
         lib/lv2/oscine.lv2"
    if [ -f "$root/$manifest" ]; then
        dirs=$(sed -n 's/^dir //p' "$root/$manifest")
        files=$(sed -n 's/^file //p' "$root/$manifest")
    else # installed before the list existed: the files an install makes now
        echo "uninstall: no $root/$manifest: removing the files make install installs"
        dirs=""
        files="bin/oscine lib/liboscine.a lib/liboscine.so.$VERSION lib/liboscine.so.$major
               lib/liboscine.so include/oscine.h lib/pkgconfig/oscine.pc
               lib/systemd/user/oscine.service share/systemd/user/oscine.service
               lib/ladspa/oscine_denoise_ladspa.so"
        for f in models/* presets/* dist/pipewire/*; do
            files="$files share/oscine/${f#dist/}"
        done
        for f in $LV2_FILES "$root"/lib/lv2/oscine.lv2/*; do
            files="$files lib/lv2/oscine.lv2/$(basename "$f")"
        done
    fi
    n=0
    for f in $files; do
        if [ -e "$root/$f" ] || [ -L "$root/$f" ]; then
            rm -f "$root/$f"
            n=$((n + 1))
        fi
    done
    rm -f "$root/$manifest"
    # children before parents: the deepest below PREFIX first, then PREFIX
    # itself, then the folders above it, nearest first
    gone=0 kept=""
    for d in $(printf '%s\n' $dirs $own | awk '!seen[$0]++ {
                   n = split($0, c, "/")
                   if ($0 == ".") k = 1000; else if (c[1] == "") k = 2000 - n; else k = 1000 - n
                   print k, $0 }' | sort -n | cut -d' ' -f2); do
        case "$d" in
        /*) case "$prefix" in "$d"/*) p=$DESTDIR$d ;; *) continue ;; esac ;;
        .) p=$root ;;
        *) p=$root/$d ;;
        esac
        [ -d "$p" ] || continue
        if rmdir "$p" 2>/dev/null; then
            gone=$((gone + 1))
        else
            kept="$kept $p"
        fi
    done
    echo "uninstall: removed $n files and $gone folders from $root"
    [ -z "$kept" ] || echo "uninstall: kept (not empty):$kept"
else
    echo "usage: sh tools/install.sh install|uninstall (run by make install / make uninstall)" >&2
    exit 2
fi
