#!/usr/bin/env bash
# Starts the desktop app under Xvfb on a fresh library, measures the time from launch until its
# window is mapped, takes a screenshot once the UI has painted, and fails when the screenshot is
# blank (a window with nothing drawn in it). Then it clicks "Library", which loads the library
# through the shell's commands (IPC), and fails if the view shows an error. Used by `make test`.
#   scripts/window-check.sh DESKTOP_BINARY SCREENSHOT.png
# QUARRY_WINDOW_LIBRARY=DIR uses an existing library instead of a fresh one (to measure launch
# time with a library in place; its failed documents show in the error colour, so only the
# timings count then).
set -euo pipefail
bin=${1:?desktop binary}
shot=${2:?screenshot path}
mkdir -p "$(dirname "$shot")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export QUARRY_DATA_DIR="${QUARRY_WINDOW_LIBRARY:-$work/library}"
export QUARRY_MODELS_DIR="${QUARRY_TEST_DATA:-$work/no-models}/models"
export BIN="$bin" SHOT="$shot" WORK="$work"
# WebKit's sandbox and GPU paths are not available under Xvfb in CI.
export WEBKIT_DISABLE_COMPOSITING_MODE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1 LIBGL_ALWAYS_SOFTWARE=1
xvfb-run -a -s "-screen 0 1280x800x24" bash -c '
  set -euo pipefail
  start=$(date +%s.%N)
  "$BIN" >"$WORK/app.log" 2>&1 & pid=$!
  mapped=""
  for _ in $(seq 1 600); do
    if xwininfo -root -tree 2>/dev/null | grep -q "\"Quarry\""; then mapped=$(date +%s.%N); break; fi
    if ! kill -0 $pid 2>/dev/null; then echo "window-check: the app exited:"; cat "$WORK/app.log"; exit 1; fi
    sleep 0.05
  done
  [ -n "$mapped" ] || { echo "window-check: no Quarry window after 30 s"; cat "$WORK/app.log"; kill $pid; exit 1; }
  echo "window-check: window mapped $(awk -v a="$start" -v b="$mapped" "BEGIN { printf \"%.2f\", b - a }") s after launch"
  # Painted: the first screenshot that is not blank (the UI has rendered and takes input).
  for _ in $(seq 1 100); do
    import -window root "$WORK/probe.png"
    sd=$(convert "$WORK/probe.png" -colorspace Gray -format "%[fx:standard_deviation]" info:)
    if awk -v sd="$sd" "BEGIN { exit !(sd > 0.02) }"; then
      echo "window-check: UI painted $(awk -v a="$start" -v b="$(date +%s.%N)" "BEGIN { printf \"%.2f\", b - a }") s after launch"
      break
    fi
    sleep 0.05
  done
  sleep 3
  import -window root "$SHOT"
  wid=$(xdotool search --name "^Quarry$" | head -1)
  # "Library" in the top bar (Ask, Search, Library, Models, Settings) at 1100x760.
  xdotool mousemove --window "$wid" 295 25 click 1
  sleep 3
  import -window root "${SHOT%.png}-library.png"
  kill $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
'
sd=$(convert "$shot" -colorspace Gray -format "%[fx:standard_deviation]" info:)
echo "window-check: screenshot $shot, grey-level standard deviation $sd"
awk -v sd="$sd" 'BEGIN { exit !(sd > 0.02) }' || { echo "window-check: the window is blank"; exit 1; }
library="${shot%.png}-library.png"
cmp -s "$shot" "$library" && { echo "window-check: clicking Library changed nothing"; exit 1; }
# The UI's error colour (#b3261e): any of it means a command failed.
errors=$(convert "$library" -fuzz 6% -fill black +opaque "#b3261e" -fill white -opaque "#b3261e" -format "%[fx:mean]" info:)
echo "window-check: library view $library, error-coloured share $errors"
awk -v e="$errors" 'BEGIN { exit !(e == 0) }' || { echo "window-check: the library view shows an error"; exit 1; }
