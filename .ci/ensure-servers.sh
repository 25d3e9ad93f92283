#!/usr/bin/env bash
# Make sure the real servers the tests start are installed: mosquitto, mosquitto_pub/sub, influxd,
# and Debian's chromium for the browser test of the built-in page.
set -euo pipefail
missing=()
for bin in mosquitto mosquitto_pub mosquitto_sub influxd chromium; do
  command -v "$bin" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
[ ${#missing[@]} -eq 0 ] && exit 0
pkgs="mosquitto mosquitto-clients influxdb chromium"
cmd="apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs"
if [ "$(id -u)" != 0 ]; then
  echo "missing: ${missing[*]}. Install them with:  sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "installing $pkgs (missing: ${missing[*]})"
# Keep the packages' init scripts from starting system services on 1883/8086.
created=0
if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created=1; fi
sh -c "$cmd"
[ "$created" = 1 ] && rm -f /usr/sbin/policy-rc.d
exit 0
