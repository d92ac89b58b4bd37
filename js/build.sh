#!/bin/sh
# Rebuild src/buttress/slo/static/vitals.min.js from the locked web-vitals and esbuild versions.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm run build
