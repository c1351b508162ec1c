# Shared by the shell tests of the CLIs (source it): a temp folder removed at exit (background jobs killed), and
#   check NAME COMMAND...              passes when the command succeeds (its output shown when it does not)
#   expect NAME WANT_RC NEEDLE -- COMMAND...   passes on exit status WANT_RC and ONE stderr line holding NEEDLE
#   finish                             prints the counts; the script's status is 0 only if nothing failed
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
pass=0 fail=0
check() {
  local name=$1
  shift
  if "$@" > "$tmp/out" 2>&1; then
    pass=$((pass + 1)); echo "ok   $name"
  else
    fail=$((fail + 1)); echo "FAIL $name: $(head -c 2000 "$tmp/out")"
  fi
}
expect() {
  local name=$1 want=$2 needle=$3
  shift 4
  "$@" > "$tmp/out" 2> "$tmp/err"
  local rc=$? lines
  lines=$(wc -l < "$tmp/err")
  if [ "$rc" -eq "$want" ] && grep -qF -- "$needle" "$tmp/err" && [ "$lines" -eq 1 ]; then
    pass=$((pass + 1)); echo "ok   $name: $(cat "$tmp/err")"
  else
    fail=$((fail + 1)); echo "FAIL $name: rc $rc (want $want), $lines stderr lines, wanted '$needle' in: $(cat "$tmp/err")"
  fi
}
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
