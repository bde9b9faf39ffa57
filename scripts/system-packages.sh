#!/usr/bin/env bash
# The one list of Debian packages the test suite needs, installed when missing.
#
#   scripts/system-packages.sh          install what is missing (root, or sudo without a
#                                       password); otherwise print one line naming the missing
#                                       packages and the command that installs them, exit 2
#   scripts/system-packages.sh --check  only say what is missing (exit 2), never install
#
# `make test` runs it first. When everything is present it only looks at files (no apt, no
# dpkg database): well under a second.
set -euo pipefail

# package  probe (a command on PATH, or an absolute path / glob that must exist)  why
PACKAGES=(
  "espeak-ng       espeak-ng                          story voices in ~100 languages"
  "rubberband-cli  rubberband                         story dubs: time-stretch, pitch"
  "ffmpeg          ffmpeg                             conform jobs, the OpenJD ffmpeg sample"
  "chromium        /usr/bin/chromium                  dashboard tests (Playwright)"
  "postgresql      /usr/lib/postgresql/*/bin/initdb   the tests' throwaway PostgreSQL"
  "bubblewrap      bwrap                              the task sandbox (mount namespace)"
  "redis-server    redis-server                       the Kitsu (Zou) server the publish tests run"
)

present() {  # present PROBE: the command is on PATH, or the path (glob) exists
  local probe=$1 match
  if [[ $probe == /* ]]; then
    for match in $probe; do [[ -e $match ]] && return 0; done
    return 1
  fi
  command -v "$probe" >/dev/null 2>&1
}

missing=()
for row in "${PACKAGES[@]}"; do
  read -r package probe _ <<<"$row"
  present "$probe" || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

list="${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: $list — this machine has no apt-get: install them (Debian names) with its package manager" >&2
  exit 2
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "missing Debian packages: $list — install them with: sudo apt-get update && sudo apt-get install -y $list" >&2
    exit 2
  fi
fi
if [[ ${1:-} == --check ]]; then
  echo "missing Debian packages: $list — install them with: ${sudo[*]:+${sudo[*]} }apt-get update && ${sudo[*]:+${sudo[*]} }apt-get install -y $list" >&2
  exit 2
fi

echo "installing Debian packages the tests need: $list" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
       "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
         --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  tail -n 15 "$log" >&2
  echo "could not install Debian packages: $list — apt-get's last lines are above; fix them and run: apt-get install -y $list" >&2
  exit 2
fi

# The probes again: a package that installed but left its tool missing is a broken list.
still=()
for row in "${PACKAGES[@]}"; do
  read -r package probe _ <<<"$row"
  present "$probe" || still+=("$package")
done
if [[ ${#still[@]} -gt 0 ]]; then
  echo "installed, yet still missing: ${still[*]} — check scripts/system-packages.sh's probes" >&2
  exit 2
fi
