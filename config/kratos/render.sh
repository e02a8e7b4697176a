#!/bin/sh
# Writes DEST: the Kratos configuration SOURCE with the placeholder ${LOGIN_HOOK_API_KEY} replaced by
# that variable's value, wherever it occurs (the login hook and the credentials hook share the key).
# Kratos reads no environment variable inside a hook's config, and the hooks' key is a secret that
# belongs in the environment, not in the file.
set -eu
if [ $# -ne 2 ]; then
  echo "usage: $0 SOURCE DEST" >&2
  exit 2
fi
key=${LOGIN_HOOK_API_KEY:-}
# The relay refuses shorter keys; the character set keeps the key literal in sed and YAML alike.
if [ ${#key} -lt 16 ]; then
  echo "$0: LOGIN_HOOK_API_KEY must be set to at least 16 characters" >&2
  exit 1
fi
case $key in
  *[!A-Za-z0-9._~-]*)
    echo "$0: LOGIN_HOOK_API_KEY may hold only letters, digits and . _ ~ -" >&2
    exit 1
    ;;
esac
if ! grep -q '\${LOGIN_HOOK_API_KEY}' "$1"; then
  echo "$0: $1 has no \${LOGIN_HOOK_API_KEY} to replace" >&2
  exit 1
fi
sed "s/\${LOGIN_HOOK_API_KEY}/$key/g" "$1" > "$2.tmp"
mv "$2.tmp" "$2"
