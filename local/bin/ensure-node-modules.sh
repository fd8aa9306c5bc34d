#!/bin/sh
# Installs the npm toolchain (deno, supabase CLI, playwright-core) when it is missing or
# older than package-lock.json, so `npm start` and `npm test` work from a fresh clone.
set -e
cd "$(dirname "$0")/../.."
stamp=node_modules/.queue-health-installed
if [ ! -x node_modules/.bin/deno ] || [ ! -x node_modules/.bin/supabase ] || \
   [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "queue-health: installing npm toolchain (deno, supabase CLI) ..." >&2
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
  touch "$stamp"
fi
