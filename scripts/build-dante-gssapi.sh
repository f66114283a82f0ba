#!/usr/bin/env bash
# Builds Dante 1.4.2 (server `sockd`, client library `libdsocks.so`) WITH GSS-API from Debian's own source
# package, for the GSSAPI interop tests: Debian's dante-server and dante-client are configured
# --without-gssapi ("Dante must be linked with an external GSSAPI library at compiletime").
# Cached: a second run prints the install prefix and exits. Needs build-essential and libkrb5-dev
# (scripts/ensure-tools.sh). Nothing global changes: apt's source lists and state live in the work dir.
set -euo pipefail

cache="${SOCKS_RELAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/socks-relay}"
prefix="$cache/dante-gssapi-1.4.2"
if [ -x "$prefix/sbin/sockd" ] && [ -f "$prefix/lib/libdsocks.so" ]; then
  echo "$prefix"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/dante-gssapi-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
cat > "$work/apt/src.sources" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_opts=(-o "APT::Sandbox::User=root" -o "Dir::Etc::sourcelist=$work/apt/src.sources" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache")
apt-get "${apt_opts[@]}" -qq update >&2
(cd "$work/src" && apt-get "${apt_opts[@]}" -qq source --download-only dante >&2)

cd "$work/src"
tar xf dante_*.orig.tar.*
cd dante-*/
tar xf ../dante_*.debian.tar.*
while read -r p; do
  case "$p" in '' | \#*) continue ;; esac
  patch -p1 -s < "debian/patches/$p"
done < debian/patches/series
# The patches touch configure.ac and the grammar: keep make from rerunning autotools, bison and flex
# (the generated files in the tarball are what Debian builds from too).
touch aclocal.m4; sleep 1; touch configure; sleep 1
find . -name Makefile.in -exec touch {} +
touch include/autoconf.h.in
./configure --prefix="$prefix" --with-socks-conf=/nonexistent/socks.conf --with-sockd-conf=/nonexistent/sockd.conf \
  --without-libwrap --without-pam --without-bsdauth --without-upnp >"$work/configure.log" 2>&1 || { tail -40 "$work/configure.log" >&2; exit 1; }
grep -q 'GSSAPI:[[:space:]]*Enabled' "$work/configure.log" || { echo "build-dante-gssapi: configure did not enable GSSAPI (is libkrb5-dev installed?)" >&2; grep -i gssapi "$work/configure.log" >&2; exit 1; }
touch lib/config_parse.c lib/config_scan.c
for d in dlib sockd; do
  rm -f "$d/config_parse.c" "$d/config_scan.c"
  cp -p lib/config_parse.c lib/config_scan.c "$d/"
  touch "$d/config_parse.c" "$d/config_scan.c"
done
make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -40 "$work/make.log" >&2; exit 1; }
make install >>"$work/make.log" 2>&1 || { tail -40 "$work/make.log" >&2; exit 1; }
echo "$prefix"
