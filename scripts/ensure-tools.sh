#!/usr/bin/env bash
# Installs the Debian tools the test suites drive, if any is missing (fast no-op when all are there).
# One list for `npm test` and .ci/run, so a fresh machine needs nothing by hand.
set -euo pipefail

# command → Debian package
declare -A TOOLS=(
  [curl]=curl [wget]=wget [git]=git [ncat]=ncat [nc]=netcat-openbsd [python3]=python3
  [danted]=dante-server [microsocks]=microsocks [tinyproxy]=tinyproxy [proxychains4]=proxychains4
  [iperf3]=iperf3 [rg]=ripgrep [chromium]=chromium [openssl]=openssl [ip]=iproute2 [ps]=procps
  [make]=build-essential [useradd]=passwd [socat]=socat [squid]=squid [ab]=apache2-utils
  [krb5kdc]=krb5-kdc [kadmin.local]=krb5-admin-server [kinit]=krb5-user [patch]=patch [strace]=strace
)
missing=()
for cmd in "${!TOOLS[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${TOOLS[$cmd]}")
done
# Python modules and headers that no command reveals.
/usr/bin/python3 -c 'import socks' >/dev/null 2>&1 || missing+=(python3-socks)
[ -e /usr/include/krb5.h ] || missing+=(libkrb5-dev)
fc-list 2>/dev/null | grep -qi liberation || missing+=(fonts-liberation)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ensure-tools: missing Debian packages: ${missing[*]} (run as root or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "ensure-tools: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${missing[@]}" >&2
fi

# Debian builds dante-server and dante-client without GSS-API: the GSSAPI tests need Dante built from
# Debian's source with it (cached; about 80 s the first time).
bash "$(dirname "$0")/build-dante-gssapi.sh" >/dev/null
