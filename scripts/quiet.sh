#!/usr/bin/env bash
# Runs a command with its output kept in LOG, shown only when the command fails (a build log of a thousand
# lines says nothing when the build works). Exit status: the command's.
# usage: scripts/quiet.sh LOG COMMAND [ARG ...]
set -u
log=$1
shift
mkdir -p "$(dirname "$log")"
if "$@" > "$log" 2>&1; then
  exit 0
else
  rc=$?
  cat "$log" >&2
  echo "$(basename "$1") failed (exit $rc); its output is above and in $log" >&2
  exit "$rc"
fi
