#!/usr/bin/env bash
# Installs the Debian 12 packages LoraDB needs to build, test and run.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git
      libnng-dev libprotobuf-c-dev protobuf-c-compiler librocksdb-dev
      check libjansson-dev libedit-dev libsubunit-dev libsodium-dev
      curl clang-format procps iproute2 iptables
      libunistring-dev # normalize(): Unicode normal forms
      clang libclang-rt-dev # clang: the libFuzzer targets in tests/fuzz
      nodejs npm) # the Neo4j JavaScript driver test (client_bolt_driver)
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
