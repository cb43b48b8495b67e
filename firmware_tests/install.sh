#!/bin/sh
# Install the cross toolchains and QEMU the firmware tests need, from Debian's packages.
# Idempotent: does nothing when every package is already installed.
#   sh firmware_tests/install.sh            the toolchains every firmware test needs
#   sh firmware_tests/install.sh --armel    also Debian's armel cross compiler, for the optional
#                                           armv6-linux target (a Pi Zero Linux binary)
set -eu
# The cross gcc packages only *recommend* their C library headers (libc6-dev-*-cross); they are
# named here so that -static Linux builds work under --no-install-recommends too.
PKGS="gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm libc6-dev-arm64-cross libc6-dev-armhf-cross"
case "${1:-}" in
    --armel) PKGS="$PKGS gcc-arm-linux-gnueabi libc6-dev-armel-cross" ;;
    "") ;;
    *) echo "usage: sh install.sh [--armel]" >&2; exit 2 ;;
esac

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "firmware_tests/install.sh: all packages present:$(printf ' %s' $PKGS)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "firmware_tests/install.sh: missing packages:$missing" >&2
    echo "  run as root, or: sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "firmware_tests/install.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086
apt-get install -o DPkg::Lock::Timeout=600 -y --no-install-recommends $missing
