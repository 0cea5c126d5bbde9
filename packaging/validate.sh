#!/usr/bin/env bash
# Validate the freedesktop files: packaging/validate.sh
# Needs the Debian/Ubuntu packages desktop-file-utils and appstream
# (sudo apt-get install -y desktop-file-utils appstream).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
ID=io.github.kpstudio.KpStudio

# desktop-file-validate exits non-zero on errors; its hints and warnings are printed too
desktop-file-validate "$ID.desktop"
# --no-net: no URL checks, so it works offline; exits non-zero on errors
appstreamcli validate --no-net --pedantic "$ID.metainfo.xml"

# one id for both files: the metainfo's <id> and launchable, the .desktop's name and Icon=
grep -q "<id>$ID</id>" "$ID.metainfo.xml"
grep -q "<launchable type=\"desktop-id\">$ID.desktop</launchable>" "$ID.metainfo.xml"
grep -qx "Icon=$ID" "$ID.desktop"
echo "validate.sh: $ID.desktop and $ID.metainfo.xml are valid"
