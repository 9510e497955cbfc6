#!/usr/bin/env bash
# Device footprint (issue "Two products, one core", BENCHMARKS.md "Device footprint"):
# builds the device dmctl (four standard MOs, no server) with the `device`
# profile, prints its stripped size and its resident memory while it idles
# waiting for a DM Notification. Run from the workspace root:
#   bash runtime/dmctl/benches/footprint.sh
set -euo pipefail
[ -n "${SKIP_BUILD:-}" ] || cargo build --profile device -p dmctl --no-default-features \
    --features mo-devinfo,mo-dmacc,mo-dacmo,mo-sessioninfo
bin=target/device/dmctl
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/bootstrap.json" <<'JSON'
[{"ClientURI":"urn:oma:mo:oma-dm-dmacc:1.2/s1/",
  "MOData":{"s1":{"SrvID":"s1","SrvURI":"http://127.0.0.1:9/dm","Name":"idle",
                  "Perm":{"p0":{"MOID":"*"}}}}}]
JSON
size=$(stat -c %s "$bin")
"$bin" client --state "$work/state" --bootstrap "$work/bootstrap.json" --once \
    --notify-udp 127.0.0.1:0 2>/dev/null &
pid=$!
sleep 2
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
printf 'device dmctl, stripped: %d bytes (%.2f MB)\n' "$size" "$(echo "$size / 1000000" | bc -l)"
printf 'idle VmRSS: %d KiB (%.2f MB), VmHWM: %d KiB\n' "$rss" "$(echo "$rss * 1024 / 1000000" | bc -l)" "$hwm"
