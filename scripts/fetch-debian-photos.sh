#!/usr/bin/env bash
# Rebuilds a folder of real colour photographs taken from Debian 12 packages
# (list and licences: scripts/debian-photos.tsv), long side <= 512 px, JPEG quality 92.
# Run from the project root after `npm ci` (uses sharp); needs apt lists (`apt-get update`).
# A second list, scripts/debian-photos-test.tsv, names other photos (some from the same
# packages) that no model here was trained, calibrated or tuned on, for testing only.
# scripts/debian-photos-test3.tsv is a third test set from 27 other packages, and
# scripts/debian-photos-more.tsv lists the 81 photos of 20 further packages that an
# experimental colorizer added to its training photos (the README gives the result).
# Usage: scripts/fetch-debian-photos.sh OUT_DIR [LIST.tsv]
set -euo pipefail

out=${1:?usage: $0 OUT_DIR [LIST.tsv]}
scripts=$(cd "$(dirname "$0")" && pwd)
tsv=$(realpath "${2:-$scripts/debian-photos.tsv}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt-get download drops privileges to _apt when run as root; mktemp's folder is private.
chmod 755 "$tmp"
mkdir -p "$tmp/root"

mapfile -t pkgs < <(tail -n +2 "$tsv" | cut -f1 | sort -u)
(cd "$tmp" && apt-get download -q "${pkgs[@]}")
for pkg in "${pkgs[@]}"; do
  dpkg -x "$tmp/${pkg}"_*.deb "$tmp/root/$pkg"
done

node "$scripts/resize-photos.mjs" "$tmp/root" "$tsv" "$out"
