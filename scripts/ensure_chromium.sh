#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (Playwright cannot download a
# browser of its own here). Installs it when it is missing and we may; otherwise says how.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Chromium for the browser tests (apt-get install chromium)"
  apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null
  exit 0
fi
echo "The browser tests need Chromium: sudo apt-get install -y chromium" >&2
exit 1
