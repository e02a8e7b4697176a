#!/bin/sh
# Builds the service and assembles its runtime into DEST: the compiled output (npm run build, into
# DEST/dist) and the production dependencies (npm ci --omit=dev), nothing else. The Dockerfile's
# runtime stage is exactly this directory, and test/deploy/runtime.test.ts assembles and starts it
# the same way, so the two cannot drift.
#
# Needs the full install (npm ci) in the repository: the build uses its TypeScript.
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$1
# DEST is filled from scratch: refuse one that already has content rather than mixing with it.
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
  echo "$0: $dest is not empty" >&2
  exit 1
fi
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

(cd "$root" && npm run --silent build -- --outDir "$dest/dist")
cp "$root/package.json" "$root/package-lock.json" "$dest/"
# --prefer-offline: a machine that ran npm ci already has every tarball in its cache.
(cd "$dest" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error)
