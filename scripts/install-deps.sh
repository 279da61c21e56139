#!/usr/bin/env bash
# Installs the Debian 12 packages LoraDB needs to build, test and run.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git
      libnng-dev libmbedtls-dev libprotobuf-c-dev protobuf-c-compiler librocksdb-dev
      check libjansson-dev libedit-dev libsubunit-dev libsodium-dev
      curl openssl clang-format procps iproute2 iptables
      libunistring-dev # normalize(): Unicode normal forms
      clang libclang-rt-dev) # clang: the libFuzzer targets in tests/fuzz
# Node.js and npm for the Neo4j JavaScript driver test (client_bolt_driver):
# Debian's packages only when the machine has no node and npm of its own
# (Debian's npm conflicts with a NodeSource nodejs).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
