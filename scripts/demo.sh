#!/bin/sh
# Builds popsd, creates a self-contained demo set-up in ./demo (a test CA and
# server certificate, a user database with one user whose password is printed,
# a Maildir with a few messages) and runs popsd in the foreground on
# 127.0.0.1:9950 (POP3S) and 127.0.0.1:9110 (POP3 + STLS). Run as root.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
make -j"$(nproc)" all
D="$(pwd)/demo"
mkdir -p "$D"
chmod 755 "$D"
if [ ! -f "$D/ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
        -keyout "$D/ca.key" -out "$D/ca.crt" -subj "/CN=popsd demo CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$D/server.key" -out "$D/server.csr" -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$D/ext.cnf"
    openssl x509 -req -in "$D/server.csr" -CA "$D/ca.crt" -CAkey "$D/ca.key" -CAcreateserial \
        -days 365 -extfile "$D/ext.cnf" -out "$D/server.crt" 2>/dev/null
    cat "$D/ca.crt" >>"$D/server.crt"
    chmod 600 "$D/server.key" "$D/ca.key"
fi
cat >"$D/popsd.conf" <<CONF
# popsd demo configuration (see README.md for every key)
[server]
log_level = info
auth_fail_delay = 2s

[certificate demo]
cert = $D/server.crt
key = $D/server.key

[userdb]
driver = sqlite
path = $D/users.db

[mail]
root = $D/mail
location = $D/mail/%d/%n/Maildir
create = yes

[listener pop3s]
address = 127.0.0.1:9950
tls = implicit

[listener pop3]
address = 127.0.0.1:9110
tls = starttls
CONF
chmod 644 "$D/popsd.conf"
MD="$D/mail/example.com/demo/Maildir"
if [ ! -d "$MD" ]; then
    mkdir -p "$MD/cur" "$MD/new" "$MD/tmp"
    i=0
    for subj in "Welcome to popsd" "A line starting with a dot" "Your weekly report"; do
        i=$((i + 1))
        f="$MD/tmp/$(date +%s).M${i}P$$.demo"
        printf 'From: postmaster@example.com\nTo: demo@example.com\nSubject: %s\nDate: %s\n\nHello from the popsd demo (message %d).\n.This line starts with a dot.\n' \
            "$subj" "$(date -R)" "$i" >"$f"
        mv "$f" "$MD/new/"
    done
fi
chown -R vmail:vmail "$D/mail"
if ! ./build/popsctl --db "$D/users.db" user list 2>/dev/null | grep -q demo@example.com; then
    echo "Creating user demo@example.com; its password, shown once:"
    ./build/popsctl --db "$D/users.db" user add demo@example.com --generate | tee "$D/demo-password.txt"
    chmod 600 "$D/demo-password.txt"
fi
chgrp _popsd-auth "$D/users.db" && chmod 640 "$D/users.db"
echo
echo "Demo user: demo@example.com  password: $(sed -n 's/^password: //p' "$D/demo-password.txt")"
echo "Try:  curl --cacert $D/ca.crt --user demo@example.com:PASSWORD pop3s://localhost:9950/1"
echo "Starting popsd in the foreground (Ctrl-C stops it)..."
exec ./build/popsd -c "$D/popsd.conf"
