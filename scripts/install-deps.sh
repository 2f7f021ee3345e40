#!/bin/sh
# Installs every build and test dependency of popsd from Debian's archive.
# Idempotent; run as root on Debian 12.
set -eu
PKGS="build-essential pkg-config clang libclang-rt-14-dev
libssl-dev openssl libevent-dev libsqlite3-dev sqlite3 libargon2-dev libcrypt-dev
libinih-dev libcmocka-dev libseccomp-dev
python3 python3-pytest curl fetchmail mpop getmail6 fail2ban procps
libjansson-dev nmap testssl.sh dovecot-pop3d valgrind
libcurl4-openssl-dev libmicrohttpd-dev prometheus
liboath-dev libqrencode-dev libpwquality-dev libidn-dev gsasl python3-jwt python3-cryptography
cracklib-runtime zbar-tools libsystemd-dev haproxy"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # Packages such as dovecot-pop3d (a test peer) must not start system services.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created_policy=1
    fi
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
    [ "$created_policy" = 1 ] && rm -f "$policy"
fi
# The unprivileged accounts the daemon's processes run as (see docs/ARCHITECTURE.md).
for u in _popsd _popsd-auth vmail; do
    id -u "$u" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$u"
done
