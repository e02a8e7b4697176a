#!/bin/sh
# Assembles the service's runtime into DEST: the production dependencies (npm ci --omit=dev) and the
# compiled output, nothing else. The Dockerfile's runtime stage is exactly this directory, and the
# runtime test assembles and starts it the same way, so the two cannot drift.
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$1
if [ ! -f "$root/dist/server.js" ]; then
  echo "$0: dist/server.js is missing: run npm run build first" >&2
  exit 1
fi
mkdir -p "$dest"
cp "$root/package.json" "$root/package-lock.json" "$dest/"
(cd "$dest" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
rm -rf "$dest/dist"
cp -R "$root/dist" "$dest/dist"
