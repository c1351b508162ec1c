#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, test and run EPEE-C (apt-get, as root).
# A no-op when everything is present. npm is only installed when no `npm` is on PATH (the machine image
# may ship Node.js from elsewhere, and Debian's npm conflicts with it).
set -euo pipefail
pkgs=(gcc make cmake pkg-config libdnnl-dev libhdf5-dev libyaml-dev libcunit1-dev libjansson-dev sqlite3 ca-certificates)
# ALBERT's tokenizer: g++ for the one C++ file (data/spm_shim.cc), the library, spm_train, libunistring (NFKD, lower)
pkgs+=(g++ libsentencepiece-dev sentencepiece libunistring-dev)
# ViT image data: .npz (MedMNIST) via libzip, PNG via libspng
pkgs+=(libzip-dev libspng-dev zlib1g-dev)
# packaging: man pages of the CLIs from their --help; python3 runs the ctypes module's test (python/epee.py)
pkgs+=(help2man python3)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all dependencies present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: need root to install ${missing[*]} (run: sudo $0)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
