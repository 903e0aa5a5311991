#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (Playwright cannot download a
# browser of its own here), and keep a screenshot of each step of the resident's pages in
# Japanese: without a Japanese font every kana and kanji in them is an empty box. The
# translation tests extract every string the code shows with GNU gettext's xgettext. Installs
# what is missing when we may; otherwise says how.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v xgettext >/dev/null 2>&1 || missing+=(gettext)
if ! { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=ja family)" ]; }; then
  missing+=(fonts-ipafont-gothic)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing for the browser and translation tests: ${missing[*]} (apt-get install)"
  apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null
  exit 0
fi
if [[ " ${missing[*]} " == *" chromium "* || " ${missing[*]} " == *" gettext "* ]]; then
  echo "The browser and translation tests need Chromium and gettext:" \
    "sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "No Japanese font: the browser tests' screenshots will show boxes for Japanese text" \
  "(sudo apt-get install -y fonts-ipafont-gothic)" >&2
