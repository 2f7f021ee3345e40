#!/bin/bash
# popsd against Dovecot on the same machine, the same data and the same TLS
# settings, one after the other; prints medians and ratios. What `make bench`
# runs. Needs root (the servers drop to their own users; Maildirs belong to
# vmail). Never part of `make check`: it takes about 10 minutes and its numbers
# depend on the machine.
#
# Knobs (environment):
#   BENCH_REPS=3          repetitions of each measurement, alternating the servers
#   BENCH_DURATION=10     seconds per session-rate run (after BENCH_WARMUP=2 s)
#   BENCH_IDLE=1000       idle authenticated TLS sessions, both servers
#   BENCH_IDLE_BIG=10000  idle sessions tried on popsd alone (0 = skip)
#   BENCH_BULK=200        1 MiB messages retrieved in the bulk run
#   BENCH_PROFILE=1       perf profile of both servers at 32 clients (0 = skip)
#   BENCH_SERVER_CPU=0 BENCH_CLIENT_CPU=1
#   BENCH_OUT=DIR         where configs, logs, raw results and profiles go
#   BENCH_QUICK=1         a short smoke run (1 rep, 3 s, 100 idle, 20 MiB bulk)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$REPO/build
PB=$BUILD/popsbench
REPS=${BENCH_REPS:-3}
DUR=${BENCH_DURATION:-10}
WARM=${BENCH_WARMUP:-2}
IDLE_N=${BENCH_IDLE:-1000}
IDLE_BIG=${BENCH_IDLE_BIG:-10000}
BULK_N=${BENCH_BULK:-200}
PROFILE=${BENCH_PROFILE:-1}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    REPS=1 DUR=3 WARM=1 IDLE_N=100 IDLE_BIG=0 BULK_N=20 PROFILE=0
fi
OUT=${BENCH_OUT:-/tmp/popsbench.$(date +%Y%m%d-%H%M%S)}
SESSION_CLIENTS_MAX=32
PW='popsbench-Pass-2024'
DOMAIN=bench.example
NUSERS=$SESSION_CLIENTS_MAX
[ "$IDLE_N" -gt "$NUSERS" ] && NUSERS=$IDLE_N
[ "$IDLE_BIG" -gt "$NUSERS" ] && NUSERS=$IDLE_BIG

[ "$(id -u)" = 0 ] || { echo "bench/run.sh: run as root" >&2; exit 1; }
log() { printf '== %s\n' "$*" >&2; }

# ------------------------------------------------------------------ set-up
if ! dpkg -s dovecot-core dovecot-pop3d >/dev/null 2>&1 || ! command -v jq >/dev/null || ! command -v perf >/dev/null; then
    log "installing dovecot-core dovecot-pop3d jq linux-perf from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq dovecot-core dovecot-pop3d jq >/dev/null
    apt-get install -y -qq linux-perf >/dev/null 2>&1 || PROFILE=0
fi
make -s -C "$REPO" all build/popsbench
command -v perf >/dev/null || PROFILE=0

# Room for 10,000 sessions (popsd keeps 5 fds each; the client one).
ulimit -Hn 400000 2>/dev/null || true
ulimit -n 400000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

mkdir -p "$OUT"/{pki,data,raw,popsd,dovecot}
chmod 755 "$OUT" "$OUT"/*
RES=$OUT/results.jsonl
: >"$RES"
log "output in $OUT"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PPORT=$(free_port)
DPORT=$(free_port)
SPORT=$(free_port)

# One ECDSA P-256 certificate for both servers (and the handshake ceiling).
(
    cd "$OUT/pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
        -days 30 -subj "/CN=popsbench CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
        -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out leaf.crt -days 30 \
        -extfile ext 2>/dev/null
    cat leaf.crt ca.crt >server.crt
    chmod 600 server.key ca.key
    chmod 644 server.crt ca.crt
)
CERT=$OUT/pki/server.crt
KEY=$OUT/pki/server.key

# Users: SHA512-CRYPT (libcrypt, default 5000 rounds), one Dovecot passwd-file used unchanged by both.
log "hashing $NUSERS+1 SHA512-CRYPT passwords"
half=$(((NUSERS + 1) / 2))
"$PB" passwd -u "u%u@$DOMAIN" -B 1 -N "$half" -P "$PW" >"$OUT/data/p1" &
"$PB" passwd -u "u%u@$DOMAIN" -B $((half + 1)) -N $((NUSERS - half)) -P "$PW" >"$OUT/data/p2" &
wait
cat "$OUT/data/p1" "$OUT/data/p2" >"$OUT/data/passwd"
"$PB" passwd -u "bulk@$DOMAIN" -N 1 -P "$PW" >>"$OUT/data/passwd"
rm -f "$OUT/data/p1" "$OUT/data/p2"

# Messages: every user has the same 5 messages (hard links inside one tree),
# bulk@ has BULK_N distinct 1 MiB messages. Names carry ,S= and ,W= as
# Dovecot's LDA writes them; both servers take the sizes from there.
log "writing Maildirs"
MSGS=$OUT/data/msgs
mkdir -p "$MSGS"
SESS_MSG_SIZES="10240 5000 20000 3000 8000"
SESS_OCTETS=0
i=0
for sz in $SESS_MSG_SIZES; do
    i=$((i + 1))
    read -r fb wb < <("$PB" genmsg -s "$sz" -i "$i" -o "$MSGS/s$i")
    mv "$MSGS/s$i" "$MSGS/$((1700000000 + i)).M${i}P4242.popsbench,S=$fb,W=$wb:2,"
    SESS_OCTETS=$((SESS_OCTETS + wb))
done
BULK_OCTETS=0
mkdir -p "$MSGS/bulk"
for i in $(seq 1 "$BULK_N"); do
    read -r fb wb < <("$PB" genmsg -s 1048576 -i $((1000 + i)) -o "$MSGS/bulk/b")
    mv "$MSGS/bulk/b" "$MSGS/bulk/$((1710000000 + i)).M${i}P4243.popsbench,S=$fb,W=$wb:2,"
    BULK_OCTETS=$((BULK_OCTETS + wb))
done
python3 - "$OUT/data/tmpl" "$MSGS" "$NUSERS" "$DOMAIN" <<'EOF'
import os, sys
root, msgs, n, dom = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sess = sorted(f for f in os.listdir(msgs) if f != "bulk")
def maildir(user):
    md = os.path.join(root, dom, user, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    return md
for k in range(1, n + 1):
    md = maildir("u%d" % k)
    for f in sess:
        os.link(os.path.join(msgs, f), os.path.join(md, "cur", f))
md = maildir("bulk")
for f in os.listdir(os.path.join(msgs, "bulk")):
    os.link(os.path.join(msgs, "bulk", f), os.path.join(md, "cur", f))
EOF
for s in popsd dovecot; do
    cp -a "$OUT/data/tmpl" "$OUT/$s/mail" # a copy each: nothing shared between the servers
    chown -R vmail:vmail "$OUT/$s/mail"
    chmod 755 "$OUT/$s/mail"
    cp "$OUT/data/passwd" "$OUT/$s/passwd"
    chmod 644 "$OUT/$s/passwd"
done

# ------------------------------------------------------------------ configs
cat >"$OUT/popsd/popsd.conf" <<EOF
# popsbench: popsd with its defaults except what the benchmark needs.
[server]
workers = 1
log = stderr
log_level = info
# All load comes from 127.0.0.1; the per-source cap (50) would refuse the idle runs.
max_connections = 20000
max_connections_per_source = 20000

[tls]
tls12 = no

[certificate bench]
cert = $CERT
key = $KEY

[userdb]
driver = passwd-file
path = $OUT/popsd/passwd

[mail]
root = $OUT/popsd/mail
location = $OUT/popsd/mail/%d/%n/Maildir
create = no

[listener pop3s]
address = 127.0.0.1:$PPORT
tls = implicit
EOF
chmod 644 "$OUT/popsd/popsd.conf"

mkdir -p "$OUT/dovecot/run" "$OUT/dovecot/state"
cat >"$OUT/dovecot/dovecot.conf" <<EOF
# popsbench: Dovecot $(dovecot --version | cut -d' ' -f1) tuned for speed, same data and TLS policy as popsd.
instance_name = popsbench
base_dir = $OUT/dovecot/run
state_dir = $OUT/dovecot/state
log_path = $OUT/dovecot/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = required
ssl_cert = <$CERT
ssl_key = <$KEY
ssl_min_protocol = TLSv1.3
ssl_cipher_suites = TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256
ssl_curve_list = X25519:P-256:P-384
ssl_prefer_server_ciphers = yes
disable_plaintext_auth = yes
auth_mechanisms = plain
# The auth cache is on (Dovecot's advice for performance). It keeps the stored
# hash and still runs SHA512-CRYPT on every login (passdb-cache.c), so it only
# saves the passwd-file lookup: the per-login hash cost is the same as without it.
auth_cache_size = 10M
auth_cache_ttl = 1 hour
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT $OUT/dovecot/passwd
}
userdb {
  driver = static
  args = uid=vmail gid=vmail home=$OUT/dovecot/mail/%d/%n
}
mail_location = maildir:~/Maildir
# Speed: POP3 never renames messages to set flags; sizes from the ,W= names / index.
pop3_no_flag_updates = yes
pop3_fast_size_lookups = yes
default_process_limit = $((IDLE_N + 200))
default_client_limit = 20000
# Login processes in high-performance mode: one long-lived pop3-login per core
# (the server has one core) proxying every TLS connection.
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $DPORT
    ssl = yes
  }
  service_count = 0
  process_min_avail = 1
  vsz_limit = 1G
}
service pop3 {
  process_limit = $((IDLE_N + 200))
}
EOF
chmod 644 "$OUT/dovecot/dovecot.conf"
doveconf -c "$OUT/dovecot/dovecot.conf" -n >"$OUT/dovecot/doveconf-n.txt" 2>"$OUT/dovecot/doveconf.err" ||
    { cat "$OUT/dovecot/doveconf.err" >&2; exit 1; }

# ------------------------------------------------------------------ process helpers
POPSD_PID=
DOVECOT_PID=
SERVE_PID=
stop_pid() { # PID: TERM, wait up to 15 s, then KILL
    local p=$1
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 150); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
cleanup() {
    stop_pid "$SERVE_PID"
    stop_pid "$POPSD_PID"
    stop_pid "$DOVECOT_PID"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tree_pids() { # ROOT -> ROOT and all its descendants
    ps -e -o pid=,ppid= | awk -v r="$1" '{ kids[$2] = kids[$2] " " $1 }
        END { q[1] = r; n = 1; for (i = 1; i <= n; i++) { print q[i]; m = split(kids[q[i]], k, " ");
              for (j = 1; j <= m; j++) q[++n] = k[j] } }'
}
tree_cpu_ticks() { # utime+stime of the tree, plus what it reaped (cutime+cstime)
    local s=0 p f
    for p in $(tree_pids "$1"); do
        f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=$((s + $(echo "${f##*) }" | awk '{ print $12 + $13 + $14 + $15 }')))
    done
    echo "$s"
}
tree_pss_kib() {
    local s=0 p v
    for p in $(tree_pids "$1"); do
        v=$(awk '/^Pss:/ { print $2; exit }' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
        s=$((s + ${v:-0}))
    done
    echo "$s"
}
TCK=$(getconf CLK_TCK)
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_popsd() {
    taskset -c "$SCPU" "$BUILD/popsd" -c "$OUT/popsd/popsd.conf" >>"$OUT/popsd/popsd.log" 2>&1 &
    POPSD_PID=$!
    for _ in $(seq 300); do
        if grep -q "role=front event=started" "$OUT/popsd/popsd.log" &&
            grep -q "role=authd event=started" "$OUT/popsd/popsd.log" && port_open "$PPORT"; then
            return 0
        fi
        kill -0 "$POPSD_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -20 "$OUT/popsd/popsd.log" >&2
    echo "popsd did not start" >&2
    exit 1
}
start_dovecot() {
    taskset -c "$SCPU" dovecot -F -c "$OUT/dovecot/dovecot.conf" >>"$OUT/dovecot/stdout.log" 2>&1 &
    DOVECOT_PID=$!
    for _ in $(seq 300); do
        if port_open "$DPORT" && [ "$(tree_pids "$DOVECOT_PID" | wc -l)" -gt 4 ]; then
            sleep 0.5
            return 0
        fi
        kill -0 "$DOVECOT_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -20 "$OUT/dovecot/dovecot.log" "$OUT/dovecot/stdout.log" >&2
    echo "dovecot did not start" >&2
    exit 1
}
pid_of() { if [ "$1" = popsd ]; then echo "$POPSD_PID"; else echo "$DOVECOT_PID"; fi; }
port_of() { if [ "$1" = popsd ]; then echo "$PPORT"; else echo "$DPORT"; fi; }

# record SERVER TEST RAWFILE CPU_TICKS [extra jq object]
record() {
    local line x=${5:-}
    [ -n "$x" ] || x='{}'
    line=$(grep '^{' "$3" | tail -1)
    [ -n "$line" ] || line='{"errors":1,"error_kinds":{"no_output":1}}'
    echo "$line" | jq -c --arg s "$1" --arg t "$2" --argjson cpu "$(echo "$4 $TCK" | awk '{ printf "%.3f", $1 / $2 }')" \
        --argjson x "$x" '. + {server: $s, test: $t, server_cpu_s: $cpu} + $x' >>"$RES"
    grep '^#' "$3" | sed "s/^# /   [$1] /" >&2 || true
    if [ -s "${3%.txt}.err" ]; then head -3 "${3%.txt}.err" | sed "s/^/   [$1] /" >&2; fi
}

# ------------------------------------------------------------------ measurements
run_session() { # SERVER CLIENTS REP
    local s=$1 c=$2 r=$3 pid raw t0 t1
    pid=$(pid_of "$s")
    raw=$OUT/raw/session-c$c-$s-$r.txt
    t0=$(tree_cpu_ticks "$pid")
    timeout $((DUR + WARM + 120)) taskset -c "$CCPU" "$PB" session -p "$(port_of "$s")" -c "$c" -U "$c" \
        -d "$DUR" -w "$WARM" -u "u%u@$DOMAIN" -P "$PW" -e 5 -E "$SESS_OCTETS" -l "$s-c$c-$r" \
        >"$raw" 2>"${raw%.txt}.err" || true
    t1=$(tree_cpu_ticks "$pid")
    record "$s" "session_c$c" "$raw" $((t1 - t0))
}
run_bulk() { # SERVER REP
    local s=$1 r=$2 pid raw t0 t1
    pid=$(pid_of "$s")
    raw=$OUT/raw/bulk-$s-$r.txt
    t0=$(tree_cpu_ticks "$pid")
    timeout 300 taskset -c "$CCPU" "$PB" bulk -p "$(port_of "$s")" -u "bulk@$DOMAIN" -P "$PW" -m "$BULK_N" \
        -e "$BULK_N" -E "$BULK_OCTETS" -l "$s-bulk-$r" -t 60 >"$raw" 2>"${raw%.txt}.err" || true
    t1=$(tree_cpu_ticks "$pid")
    record "$s" bulk "$raw" $((t1 - t0))
}
run_idle() { # SERVER N REP
    local s=$1 n=$2 r=$3 pid raw ready bp pss0 pss1 nprocs t0 t1 ok=0
    pid=$(pid_of "$s")
    raw=$OUT/raw/idle$n-$s-$r.txt
    ready=$OUT/raw/idle$n-$s-$r.ready
    sleep 1
    pss0=$(tree_pss_kib "$pid")
    t0=$(tree_cpu_ticks "$pid")
    taskset -c "$CCPU" "$PB" idle -p "$(port_of "$s")" -n "$n" -c 64 -u "u%u@$DOMAIN" -B 1 -P "$PW" -e 5 \
        -E "$SESS_OCTETS" -t 120 -d 900 --ready-file "$ready" -l "$s-idle$n-$r" >"$raw" 2>"${raw%.txt}.err" &
    bp=$!
    for _ in $(seq 6000); do # at most 10 minutes to set up
        [ -e "$ready" ] && { ok=1; break; }
        kill -0 "$bp" 2>/dev/null || break
        sleep 0.1
    done
    sleep 2 # let the servers settle (Dovecot's pop3 processes finish starting)
    pss1=$(tree_pss_kib "$pid")
    nprocs=$(tree_pids "$pid" | wc -l)
    kill -USR1 "$bp" 2>/dev/null || true
    wait "$bp" || true
    t1=$(tree_cpu_ticks "$pid")
    record "$s" "idle$n" "$raw" $((t1 - t0)) \
        "{\"pss_before_kib\":$pss0,\"pss_after_kib\":$pss1,\"processes\":$nprocs,\"ready\":$ok}"
    local est
    est=$(tail -1 "$RES" | jq '.established // 0')
    [ "$est" -gt 0 ] && echo "   [$s] PSS $pss0 -> $pss1 KiB over $nprocs processes: $(((pss1 - pss0) / est)) KiB per session" >&2
    return 0
}

# ------------------------------------------------------------------ crypto ceilings (server core)
log "crypto ceilings on CPU $SCPU"
speed_16k() { # -evp ALG -> kB/s for 16 KiB blocks (last column)
    taskset -c "$SCPU" openssl speed -elapsed -seconds 3 -evp "$1" 2>/dev/null |
        awk -v a="$1" 'toupper($1) == toupper(a) { v = $NF } END { sub(/k$/, "", v); printf "%d\n", v }'
}
AES_KBS=$(speed_16k aes-256-gcm)
CHACHA_KBS=$(speed_16k chacha20-poly1305)
PK=$(taskset -c "$SCPU" openssl speed -elapsed -seconds 3 ecdsap256 ecdhx25519 2>/dev/null)
ECDSA_SIGN=$(echo "$PK" | awk '/ecdsa \(nistp256\)/ { print $(NF-1) }')
X25519_OPS=$(echo "$PK" | awk '/ecdh \(X25519\)/ { print $NF }')
t0=$(date +%s.%N)
taskset -c "$SCPU" "$PB" passwd -N 200 -P "$PW" >/dev/null
t1=$(date +%s.%N)
SHA512_MS=$(echo "$t0 $t1" | awk '{ printf "%.2f", ($2 - $1) * 1000 / 200 }')
ARGON_MS=null
if command -v argon2 >/dev/null; then
    t0=$(date +%s.%N)
    for _ in 1 2 3 4 5; do echo -n "$PW" | taskset -c "$SCPU" argon2 saltsaltsalt -id -t 3 -m 16 -p 1 >/dev/null; done
    t1=$(date +%s.%N)
    ARGON_MS=$(echo "$t0 $t1" | awk '{ printf "%.1f", ($2 - $1) * 1000 / 5 }')
fi
# TLS 1.3 handshakes (X25519 + ECDSA P-256, the same certificate) against a trivial
# server on the server core: the rate, and handshakes per second of that core's CPU time.
taskset -c "$SCPU" "$PB" serve -p "$SPORT" --cert "$CERT" --key "$KEY" >"$OUT/raw/serve.txt" 2>&1 &
SERVE_PID=$!
for _ in $(seq 50); do port_open "$SPORT" && break; sleep 0.1; done
t0=$(tree_cpu_ticks "$SERVE_PID")
taskset -c "$CCPU" "$PB" handshake -p "$SPORT" -c 32 -d "$DUR" -w 1 -l serve-handshake >"$OUT/raw/handshake.txt" \
    2>"$OUT/raw/handshake.err" || true
t1=$(tree_cpu_ticks "$SERVE_PID")
stop_pid "$SERVE_PID"
SERVE_PID=
record ceiling handshake "$OUT/raw/handshake.txt" $((t1 - t0))
HS_RATE=$(tail -1 "$RES" | jq '.sessions_per_s')
HS_CPU=$(tail -1 "$RES" | jq '.server_cpu_s')
HS_CEIL=$(tail -1 "$RES" | jq '(.sessions + .warmup_sessions) / (if .server_cpu_s > 0 then .server_cpu_s else 1 end) | floor')
jq -nc --argjson aes "$AES_KBS" --argjson cc "$CHACHA_KBS" --argjson sign "${ECDSA_SIGN:-0}" \
    --argjson x "${X25519_OPS:-0}" --argjson sha "$SHA512_MS" --argjson ar "$ARGON_MS" \
    --argjson hs "$HS_RATE" --argjson hsc "$HS_CEIL" \
    '{server: "ceiling", test: "crypto", aes256gcm_mb_s: ($aes * 1.024 / 1000), chacha_mb_s: ($cc * 1.024 / 1000),
      ecdsa_p256_sign_s: $sign, x25519_op_s: $x, sha512crypt_ms: $sha, argon2id_64m_t3_ms: $ar,
      handshake_rate_32c: $hs, handshake_per_server_cpu_s: $hsc}' >>"$RES"
log "AES-256-GCM $((AES_KBS / 1000)) MB/s, ChaCha20-Poly1305 $((CHACHA_KBS / 1000)) MB/s, ECDSA P-256 sign ${ECDSA_SIGN}/s, X25519 ${X25519_OPS}/s, SHA512-CRYPT ${SHA512_MS} ms, Argon2id(64 MiB, t=3) ${ARGON_MS} ms"
log "handshakes: $HS_RATE/s with 32 clients, server CPU ${HS_CPU} s -> ceiling $HS_CEIL handshakes per CPU-second"

# ------------------------------------------------------------------ servers
log "starting popsd (port $PPORT) and Dovecot (port $DPORT), both on CPU $SCPU; clients on CPU $CCPU"
start_popsd
start_dovecot

# Warm-up: every session user logs in once on each server (Dovecot builds its indexes).
for s in popsd dovecot; do
    taskset -c "$CCPU" "$PB" session -p "$(port_of "$s")" -c "$SESSION_CLIENTS_MAX" -n $((SESSION_CLIENTS_MAX * 3)) \
        -u "u%u@$DOMAIN" -P "$PW" -e 5 -E "$SESS_OCTETS" -l "$s-warmup" >"$OUT/raw/warmup-$s.txt" 2>&1 || true
    taskset -c "$CCPU" "$PB" bulk -p "$(port_of "$s")" -u "bulk@$DOMAIN" -P "$PW" -m 1 -l "$s-warmup-bulk" \
        >>"$OUT/raw/warmup-$s.txt" 2>&1 || true
done

for r in $(seq 1 "$REPS"); do
    order="popsd dovecot"
    [ $((r % 2)) = 0 ] && order="dovecot popsd"
    for c in 1 32; do
        for s in $order; do
            log "rep $r: session rate, $c client(s), $s"
            run_session "$s" "$c" "$r"
        done
    done
    for s in $order; do
        log "rep $r: bulk RETR $BULK_N x 1 MiB, $s"
        run_bulk "$s" "$r"
    done
done
for r in $(seq 1 "$REPS"); do
    order="popsd dovecot"
    [ $((r % 2)) = 0 ] && order="dovecot popsd"
    for s in $order; do
        log "rep $r: $IDLE_N idle authenticated TLS sessions, $s"
        run_idle "$s" "$IDLE_N" "$r"
    done
done
if [ "$IDLE_BIG" -gt 0 ]; then
    log "$IDLE_BIG idle authenticated TLS sessions, popsd only"
    run_idle popsd "$IDLE_BIG" 1
fi

# ------------------------------------------------------------------ profile
if [ "$PROFILE" = 1 ]; then
    for s in popsd dovecot; do
        log "profile: $s, 32 clients, perf record on CPU $SCPU (everything that runs there)"
        taskset -c "$CCPU" "$PB" session -p "$(port_of "$s")" -c 32 -d $((DUR + 2)) -u "u%u@$DOMAIN" -P "$PW" -e 5 \
            -E "$SESS_OCTETS" -l "$s-profile" >"$OUT/raw/profile-$s.txt" 2>&1 &
        bp=$!
        sleep 1
        perf record -q -e cpu-clock -F 1999 -g -C "$SCPU" -o "$OUT/perf-$s.data" -- sleep "$DUR" >/dev/null 2>&1 || true
        wait "$bp" || true
        perf report -i "$OUT/perf-$s.data" --stdio --no-children --sort comm,dso --percent-limit 0.5 \
            >"$OUT/perf-$s-dso.txt" 2>/dev/null || true
        perf report -i "$OUT/perf-$s.data" --stdio --no-children --sort comm,dso,sym -g none --percent-limit 0.4 \
            >"$OUT/perf-$s-sym.txt" 2>/dev/null || true
        perf report -i "$OUT/perf-$s.data" --stdio --children --sort sym -g none --percent-limit 2 \
            >"$OUT/perf-$s-children.txt" 2>/dev/null || true
    done
fi

stop_pid "$POPSD_PID"
POPSD_PID=
stop_pid "$DOVECOT_PID"
DOVECOT_PID=

# ------------------------------------------------------------------ summary
log "summary"
python3 - "$RES" "$IDLE_N" "$IDLE_BIG" "$BULK_N" >"$OUT/summary.txt" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
idle_n, idle_big, bulk_n = sys.argv[2], sys.argv[3], sys.argv[4]
def pick(server, test):
    return [r for r in rows if r.get("server") == server and r.get("test") == test]
def med(server, test, f):
    v = [f(r) for r in pick(server, test)]
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None
def errs(server, test):
    return sum(r.get("errors", 0) for r in pick(server, test))
def fmt(x, nd=1):
    return "-" if x is None else ("%.*f" % (nd, x))
lines = []
def row(name, test, f, nd=1, better="higher", target=None):
    p, d = med("popsd", test, f), med("dovecot", test, f)
    ratio = (p / d) if (p and d) else None
    e = errs("popsd", test) + errs("dovecot", test)
    lines.append("%-44s %12s %12s %9s   %s%s" % (name, fmt(p, nd), fmt(d, nd),
                 ("x%.2f" % ratio) if ratio else "-", target or "", "  ERRORS: %d" % e if e else ""))
def cpu_per(r):
    n = r.get("sessions", 0) + r.get("warmup_sessions", 0)
    return 1000 * r["server_cpu_s"] / n if n else None
def pss_per(r):
    est = r.get("established", 0)
    return (r["pss_after_kib"] - r["pss_before_kib"]) / est if est else None
lines.append("%-44s %12s %12s %9s   %s" % ("measurement (median of runs)", "popsd", "dovecot", "ratio", "target"))
row("sessions/s, 1 client", "session_c1", lambda r: r.get("sessions_per_s"))
row("sessions/s, 32 clients", "session_c32", lambda r: r.get("sessions_per_s"), target=">= x10")
row("latency p50 ms, 1 client", "session_c1", lambda r: r["lat_ms"]["p50"], 2)
row("latency p50 ms, 32 clients", "session_c32", lambda r: r["lat_ms"]["p50"], 2)
row("latency p99 ms, 32 clients", "session_c32", lambda r: r["lat_ms"]["p99"], 2, target="popsd p99 < dovecot p50")
row("server CPU ms per session, 1 client", "session_c1", cpu_per, 2)
row("server CPU ms per session, 32 clients", "session_c32", cpu_per, 2)
row("bulk RETR %s x 1 MiB, MB/s" % bulk_n, "bulk", lambda r: r.get("mb_per_s"), target=">= x10")
row("server CPU s for the bulk run", "bulk", lambda r: r.get("server_cpu_s"), 2)
row("idle %s: KiB PSS per session" % idle_n, "idle" + idle_n, pss_per, 1, target="<= 1/20 (< 30 KiB)")
row("idle %s: sessions established" % idle_n, "idle" + idle_n, lambda r: r.get("established"), 0)
row("idle %s: server processes" % idle_n, "idle" + idle_n, lambda r: r.get("processes"), 0)
row("idle %s: seconds to set up" % idle_n, "idle" + idle_n, lambda r: r.get("setup_s"), 1)
if idle_big != "0":
    for r in pick("popsd", "idle" + idle_big):
        lines.append("popsd, %s idle sessions: %d established, %d answered QUIT after the hold, %s KiB PSS per session, "
                     "set up in %.1f s, errors %d %s" % (idle_big, r.get("established", 0), r.get("quit_ok", 0),
                     fmt(pss_per(r)), r.get("setup_s", 0), r.get("errors", 0), json.dumps(r.get("error_kinds", {}))))
c = [r for r in rows if r.get("server") == "ceiling" and r.get("test") == "crypto"]
if c:
    c = c[0]
    lines.append("ceilings on the server core: AES-256-GCM %.0f MB/s, ChaCha20-Poly1305 %.0f MB/s, ECDSA P-256 sign %s/s, "
                 "X25519 %s op/s," % (c["aes256gcm_mb_s"], c["chacha_mb_s"], c["ecdsa_p256_sign_s"], c["x25519_op_s"]))
    lines.append("  TLS 1.3 handshakes: %s per server CPU-second (%s/s reached with 32 clients on one client core), "
                 "SHA512-CRYPT %s ms, Argon2id m=64MiB t=3 %s ms" % (c["handshake_per_server_cpu_s"],
                 c["handshake_rate_32c"], c["sha512crypt_ms"], c["argon2id_64m_t3_ms"]))
    s32 = med("popsd", "session_c32", lambda r: r.get("sessions_per_s"))
    b = med("popsd", "bulk", lambda r: r.get("mb_per_s"))
    if s32:
        lines.append("  popsd at 32 clients = %.1f%% of the handshake ceiling (target >= 50%%); bulk = %.1f%% of AES-256-GCM "
                     "(target >= 50%%)" % (100 * s32 / c["handshake_per_server_cpu_s"], 100 * (b or 0) / c["aes256gcm_mb_s"]))
tls = {(r["server"]): (r.get("tls"), r.get("cipher"), r.get("group"), r.get("cert")) for r in rows if r.get("tls")}
for k, v in sorted(tls.items()):
    lines.append("TLS seen from the client, %s: %s" % (k, " ".join(str(x) for x in v)))
print("\n".join(lines))
EOF
cat "$OUT/summary.txt"
echo "raw results: $RES; logs, configs and profiles: $OUT"
