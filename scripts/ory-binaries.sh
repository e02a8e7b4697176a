#!/usr/bin/env bash
# Builds real Ory Hydra and Ory Kratos for the end-to-end suite (test/e2e/) from the Go module proxy,
# through the wrapper modules in tools/ory/{hydra,kratos}, into a cache outside the repository.
#
#   scripts/ory-binaries.sh           build what is missing, then print HYDRA_BIN=… and KRATOS_BIN=…
#   scripts/ory-binaries.sh --print   print the paths of binaries already built; exit 1 if one is missing
#
# A binary is cached under $ORY_BIN_CACHE (default ~/.cache/logout-relay/ory) in a directory named by
# the Ory version and a digest of its wrapper's go.mod and go.sum, so that a warm machine reuses it and
# a changed pin rebuilds it. Measured on 2 cores: cold (empty Go module and build caches) 3.5-4.5
# minutes; binaries missing but Go's build cache warm, about 30 s; both binaries cached, nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ORY_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/logout-relay/ory}
mode=build
case "${1:-}" in
  '') ;;
  --print) mode=print ;;
  *) echo "usage: $0 [--print]" >&2; exit 2 ;;
esac

# name module: the binary's name and the module the wrapper pins (its `tool` line).
binary_path() {
  local name=$1 module=$2 dir="$root/tools/ory/$1" version digest
  version=$(awk -v m="$module" '$1 == m { print $2; exit }' "$dir/go.mod")
  if [ -z "$version" ]; then
    echo "$0: $dir/go.mod does not require $module" >&2
    exit 1
  fi
  digest=$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-12)
  echo "$cache/$name-$version-$digest/$name"
}

build() {
  local name=$1 module=$2 out tmp
  out=$(binary_path "$name" "$module")
  if [ -x "$out" ]; then
    return
  fi
  if [ "$mode" = print ]; then
    echo "$0: $out is missing; build it with scripts/ory-binaries.sh" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$out")"
  tmp="$out.partial.$$"
  echo "building $module into $out (cold: about 2 minutes each on 2 cores)" >&2
  local started=$SECONDS
  # cgo and SQLite: without the sqlite tag neither server accepts a sqlite:// or memory DSN.
  (cd "$root/tools/ory/$name" &&
    CGO_ENABLED=1 go build -trimpath -tags sqlite,sqlite_omit_load_extension -o "$tmp" "$module")
  mv "$tmp" "$out"
  echo "built $name in $((SECONDS - started)) s" >&2
}

build hydra github.com/ory/hydra/v2
build kratos github.com/ory/kratos
echo "HYDRA_BIN=$(binary_path hydra github.com/ory/hydra/v2)"
echo "KRATOS_BIN=$(binary_path kratos github.com/ory/kratos)"
