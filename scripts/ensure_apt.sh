#!/usr/bin/env bash
# Install the Debian packages the tests need that are missing: real nginx with the Lua
# module, LuaJIT, busted and luacheck (gateway plugins), Mono and Newtonsoft.Json (the
# Azure APIM policy expressions).
#
# Usage: scripts/ensure_apt.sh [package...]   (default: the gateway-plugin test set)
# Needs root when anything is missing; `apt-get update` runs only if an install fails.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  set -- nginx libnginx-mod-http-lua lua-cjson luajit2 lua5.1 lua-busted lua-check \
    mono-mcs mono-runtime libnewtonsoft-json-cil-dev
fi
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "[apt] all present: $*"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "[apt] missing Debian packages: ${missing[*]} (install them as root)" >&2
  exit 1
fi
echo "[apt] installing ${missing[*]}"
# No daemons started by package scripts: the tests start their own nginx on loopback.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
fi
trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
  apt-get update -qq
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
