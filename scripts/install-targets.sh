#!/bin/sh
# Installs the real servers s2spec can manage (Debian packages `prosody` and
# `ejabberd`) without starting their system services: s2spec starts its own
# instances on loopback with generated configurations.
#
# Usage: scripts/install-targets.sh [prosody] [ejabberd]   (default: both)
# Needs root (or sudo). Safe to run again.
set -eu

packages="${*:-prosody ejabberd}"
for p in $packages; do
    case "$p" in
        prosody|ejabberd) ;;
        *) echo "install-targets.sh: unknown target \`$p\` (prosody or ejabberd)" >&2; exit 2 ;;
    esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

# A policy-rc.d that exits 101 forbids every service start during the
# installation; an existing one is restored afterwards.
policy=/usr/sbin/policy-rc.d
backup=""
if [ -e "$policy" ]; then
    backup="$(mktemp)"
    $SUDO cp -p "$policy" "$backup"
fi
restore() {
    if [ -n "$backup" ]; then
        $SUDO cp -p "$backup" "$policy"
        rm -f "$backup"
    else
        $SUDO rm -f "$policy"
    fi
}
trap restore EXIT INT TERM
printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
$SUDO chmod 755 "$policy"

# lua-unbound is only recommended by prosody, but s2spec needs it: it is how
# Prosody is pointed at the mock DNS (`unbound = { forward = ... }`).
debs=""
for p in $packages; do
    case "$p" in
        prosody) debs="$debs prosody lua-unbound" ;;
        ejabberd) debs="$debs ejabberd" ;;
    esac
done

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $debs

# Should a service have started anyway (no policy-rc.d support), stop it:
# s2spec's instances bind their own loopback ports and must not share state.
for p in $packages; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$p" 2>/dev/null; then
        $SUDO systemctl stop "$p" || true
    fi
done

for p in $packages; do
    case "$p" in
        prosody) prosodyctl about 2>/dev/null | sed -n 's/^Prosody \(.*\)$/prosody \1/p' | head -1 || true ;;
        ejabberd) dpkg-query -W -f='ejabberd ${Version}\n' ejabberd || true ;;
    esac
done
