#!/usr/bin/env bash
# QEMU >= 9 for the emulated B-L475E-IOT01A (machine b-l475e-iot01a), without replacing the system QEMU that the
# mps2 instruction counts come from: Debian's own qemu-system-arm from bookworm-backports (10.0.2 for Debian 12),
# fetched with `apt-get download` through a private apt configuration and unpacked with `dpkg -x` into DEST
# (default .tools/qemu10). Nothing is installed system-wide. Nothing to do when the system QEMU has the machine.
set -euo pipefail
DEST=${1:-.tools/qemu10}
MACHINE=b-l475e-iot01a
PKGS="qemu-system-arm qemu-system-common qemu-system-data"

has_machine() { "$1" -machine help 2>/dev/null | grep -q "^$MACHINE "; }

if command -v qemu-system-arm >/dev/null && has_machine "$(command -v qemu-system-arm)"; then
  echo "==> system qemu-system-arm already emulates $MACHINE"; exit 0
fi
if [ -x "$DEST/usr/bin/qemu-system-arm" ] && QEMU_MODULE_DIR="$DEST/usr/lib/x86_64-linux-gnu/qemu" \
     has_machine "$DEST/usr/bin/qemu-system-arm"; then
  echo "==> $DEST already holds $("$DEST/usr/bin/qemu-system-arm" --version | head -1)"; exit 0
fi
. /etc/os-release
CODENAME=${VERSION_CODENAME:-bookworm}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/parts" "$WORK/debs"
echo "deb http://deb.debian.org/debian $CODENAME-backports main" > "$WORK/sources.list"
APT=(-o "Dir::Etc::sourcelist=$WORK/sources.list" -o "Dir::Etc::sourceparts=$WORK/parts"
     -o "Dir::State::Lists=$WORK/lists" -o "Dir::Cache=$WORK/cache" -o Debug::NoLocking=1
     -o APT::Sandbox::User=root)
echo "==> fetching $PKGS from $CODENAME-backports into $DEST"
timeout 600 apt-get -qq "${APT[@]}" update
( cd "$WORK/debs" && timeout 600 apt-get -qq "${APT[@]}" download $(for p in $PKGS; do echo "$p/$CODENAME-backports"; done) )
rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp"
for deb in "$WORK"/debs/*.deb; do dpkg -x "$deb" "$DEST.tmp"; done
if ! QEMU_MODULE_DIR="$DEST.tmp/usr/lib/x86_64-linux-gnu/qemu" has_machine "$DEST.tmp/usr/bin/qemu-system-arm"; then
  echo "error: the unpacked qemu-system-arm does not run here or lacks $MACHINE" >&2; exit 1
fi
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
echo "==> $("$DEST/usr/bin/qemu-system-arm" --version | head -1) in $DEST"
