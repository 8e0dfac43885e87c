#!/usr/bin/env bash
# Run first by `npm test`: makes sure the Debian packages of scripts/test-packages.txt are installed.
# As root it installs what is missing (apt-get); otherwise it stops at once naming the packages and the
# command, instead of letting the suite fail test by test. TANDEM_SKIP_PACKAGE_CHECK=1 skips the check.
set -uo pipefail
[ "${TANDEM_SKIP_PACKAGE_CHECK:-}" = 1 ] && exit 0
here=$(cd "$(dirname "$0")" && pwd)
list="$here/test-packages.txt"
mapfile -t packages < <(grep -Ev '^\s*(#|$)' "$list")

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "npm test: the tests need Linux with Debian's packages (${packages[*]}); this machine has no dpkg." >&2
  echo "npm test: run them on Debian 12 or later as root (see README, Test)." >&2
  exit 1
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "npm test: these Debian packages are missing: ${missing[*]}" >&2
  echo "npm test: install them as root, then run npm test again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  echo "npm test: (the tests also need root themselves: loop devices, mounts, network namespaces)" >&2
  exit 1
fi
echo "npm test: installing missing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq; then
  echo "npm test: apt-get update failed; check the machine's package sources, then run npm test again." >&2
  exit 1
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  echo "npm test: apt-get install ${missing[*]} failed (see above)." >&2
  exit 1
fi
echo "npm test: installed ${missing[*]}"
