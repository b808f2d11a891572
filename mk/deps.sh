#!/usr/bin/env bash
# Install the Debian packages whose marker is missing.
# Arguments are NEED:PACKAGE pairs; NEED is a command name, or an absolute
# path that the package installs. Quiet and idempotent when all are present.
set -euo pipefail

missing=()
for pair in "$@"; do
	need=${pair%%:*}
	pkg=${pair#*:}
	if [[ $need == /* ]]; then
		[[ -e $need ]] && continue
	else
		command -v "$need" >/dev/null 2>&1 && continue
	fi
	[[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing ${missing[*]}, and this is not a Debian system: install them by hand" >&2
	exit 1
fi
sudo=
if [[ $(id -u) -ne 0 ]]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "deps: missing ${missing[*]}; run as root or install sudo" >&2
		exit 1
	fi
	sudo=sudo
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
