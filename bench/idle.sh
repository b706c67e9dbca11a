#!/usr/bin/env bash
# bench/idle.sh -- the idle-connection part of `make bench`: what 1,000
# logged-in IMAP connections waiting in IDLE cost buzon and Dovecot, on the
# same machine with the same load generator, loopback only.
#
# Run as root (it installs dovecot-imapd and postfix -- for smtp-source --
# if missing, starts a private Dovecot instance, raises RLIMIT_NOFILE and,
# for the run only, fs.inotify.max_user_instances).
#
# Load generator: bench/idle_client.py, one Python process, non-blocking
# sockets under selectors (epoll) with a state machine per connection
# (connect, TLS handshake, LOGIN, SELECT INBOX, IDLE): no client thread per
# connection.  Connections come from 127.0.0.2 .. 127.0.0.<1+SRC_ADDRS> and
# log in as u000 .. u<USERS-1> round robin (so u000 holds CONNS/USERS of
# them); every Maildir is empty at the start.
#
# Per server, two fresh starts (the rest figures are taken on a server that
# has had no client yet, 2 s after it listens):
#   plain  CONNS connections on the IMAP port: memory and threads at rest and
#          with all of them in IDLE (after SETTLE s); then DELIVERIES
#          deliveries into u000's Maildir, each timed until every one of
#          u000's connections reads `* N EXISTS`:
#            rename  a file written to tmp/ and renamed into new/ (how an
#                    LDA delivers; both servers, the same mechanism)
#            smtp    buzon only: SMTP to buzon, from the final 250 of DATA
#          then (buzon only) SMTP intake: smtp-source, INTAKE_MSGS messages
#          of 1 KiB over INTAKE_SESSIONS sessions (a new connection per
#          message) to a user with no idle connection, local delivery into
#          Maildir; a warm-up and INTAKE_RUNS runs with the CONNS connections
#          in IDLE, then the same with none (connections closed).
#   tls    CONNS connections over implicit TLS (imaps; self-signed P-256
#          certificate made here with openssl): memory and threads at rest
#          and in IDLE.
# Memory: summed VmRSS (and PSS) over the server's process tree -- buzon:
# the server process and its children; Dovecot: the master and every child
# (config, log, anvil, auth, imap-login, imap ...); threads summed the same
# way.  KiB per idle connection = (with CONNS - at rest) / CONNS.
# Goals (buzon, DESIGN.md "Memory and speed" and the idle-connection issue):
# <= 16 KiB per plain idle connection, <= 48 KiB with TLS, thread count
# independent of the number of connections, intake with CONNS idle within
# 10 % of intake with none, EXISTS under 100 ms after a delivery.  The
# Postfix SMTP intake comparison is bench/bench.sh's.
#
#   buzon:   target/release/buzon serve -c CONF: imap.listen and imaps.listen
#            on 127.0.0.1:<free port>, smtp.listen likewise, users =
#            file:PASSWD, max_connections = 4000, max_connections_per_ip =
#            2000, and `workers = WORKERS` when the binary knows that key
#            (`buzon check-config` decides).
#   dovecot: a private instance (own config, base_dir, state_dir, log,
#            passwd-file, mail under the temp dir, mail as nobody;
#            /etc/dovecot is not read or touched) on 127.0.0.1 only, its
#            process model left at Debian's defaults (one imap process per
#            connection, one imap-login per connection while it logs in
#            and, with TLS, for its whole life as its TLS proxy) but the
#            limits raised so CONNS fit (printed in the output).
#
# Knobs: CONNS=1000 USERS=100 SRC_ADDRS=50 DELIVERIES=20 SETTLE=3
#        INTAKE_MSGS=2000 INTAKE_SESSIONS=8 INTAKE_RUNS=7 WORKERS=<2 per CPU, >= 4>
#        ONLY=buzon|dovecot BUZON=target/release/buzon KEEP=1 (keep the temp dir)
# Safety: every address is in 127.0.0.0/8; every wait is bounded; only
# processes started here are stopped, by pid (buzon) or by Dovecot's master
# pid; the inotify sysctl is put back on exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY="${PYTHON:-python3}"
CLIENT=("$PY" "$HERE/idle_client.py")

CONNS="${CONNS:-1000}"
USERS="${USERS:-100}"
SRC_ADDRS="${SRC_ADDRS:-50}"
DELIVERIES="${DELIVERIES:-20}"
SETTLE="${SETTLE:-3}"
INTAKE_MSGS="${INTAKE_MSGS:-2000}"
INTAKE_SESSIONS="${INTAKE_SESSIONS:-8}"
INTAKE_RUNS="${INTAKE_RUNS:-7}"
NCPU="$(nproc)"
WORKERS="${WORKERS:-$((NCPU * 2 > 4 ? NCPU * 2 : 4))}"
ONLY="${ONLY:-}"
BUZON="${BUZON:-$ROOT/target/release/buzon}"

DOMAIN=example.test
PASS=benchpass
MAIL_UID="$(id -u nobody)"
MAIL_GID="$(id -g nobody)"

log() { echo "[idle-bench $(date +%T)] $*" >&2; }
die() { log "$*"; exit 1; }

[[ "$(id -u)" == 0 ]] || die "run as root (it installs and starts Dovecot, raises limits)"
case "$ONLY" in "" | buzon | dovecot) ;; *) die "ONLY must be buzon or dovecot" ;; esac
command -v ss >/dev/null || die "ss (iproute2) is missing"
command -v openssl >/dev/null || die "openssl is missing"
((SRC_ADDRS >= 1 && SRC_ADDRS <= 250)) || die "SRC_ADDRS must be 1..250"

# Descriptors: the client holds CONNS sockets, buzon CONNS sockets plus files.
NOFILE_WANT=$((CONNS * 2 + 4096))
ulimit -n "$NOFILE_WANT" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) >= CONNS + 256)) || die "RLIMIT_NOFILE $(ulimit -n) is too low for CONNS=$CONNS"

WORK="$(mktemp -d /var/tmp/buzon-bench-idle.XXXXXX)"
chmod 755 "$WORK"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
B="$WORK/buzon"
DC="$WORK/dovecot"
BUZON_PID=""
DC_PID=""
INOTIFY_OLD=""
NOTES=()

cleanup() {
    buzon_stop || true
    dovecot_stop || true
    if [[ -n "$INOTIFY_OLD" ]]; then echo "$INOTIFY_OLD" >/proc/sys/fs/inotify/max_user_instances || true; fi
    if [[ "${KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Bounded wait until something listens on 127.0.0.1:PORT (no connection made).
wait_listen() {
    local port=$1 i
    for ((i = 0; i < 100; i++)); do
        ss -Hltn "sport = :$port" | grep -q "127.0.0.1:$port" && return 0
        sleep 0.1
    done
    return 1
}

# Bounded wait until PID is gone (it need not be our child); then SIGKILL.
wait_gone() {
    local pid=$1 i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "pid $pid still there after 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

install_missing() {
    local need=()
    [[ -x /usr/lib/dovecot/imap ]] && command -v dovecot >/dev/null || need+=(dovecot-imapd)
    command -v smtp-source >/dev/null || need+=(postfix)
    ((${#need[@]})) || return 0
    log "installing ${need[*]}"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q "${need[@]}" >/dev/null
}

# mkmaildirs ROOT [OWNER]: ROOT/<user>/Maildir/{new,cur,tmp} for every user.
mkmaildirs() {
    local root=$1 owner=${2:-} i
    for ((i = 0; i < USERS; i++)); do
        mkdir -p "$root/$(printf 'u%03d' "$i")/Maildir/"{new,cur,tmp}
    done
    mkdir -p "$root/intake/Maildir/"{new,cur,tmp}
    [[ -z "$owner" ]] || chown -R "$owner" "$root"
}

passwd_file() {
    local i
    for ((i = 0; i < USERS; i++)); do printf 'u%03d@%s:{PLAIN}%s\n' "$i" "$DOMAIN" "$PASS"; done
    echo "intake@$DOMAIN:{PLAIN}$PASS"
}

# ---------------------------------------------------------------- buzon ---
BUZON_IMAP=""
BUZON_IMAPS=""
BUZON_SMTP=""
buzon_setup() {
    [[ -x "$BUZON" ]] || die "$BUZON is missing: run \`make\` first"
    mkdir -p "$B/data"
    mkmaildirs "$B/mail"
    passwd_file >"$B/passwd"
    BUZON_IMAP="$(free_port)"
    BUZON_IMAPS="$(free_port)"
    BUZON_SMTP="$(free_port)"
    cat >"$B/buzon.conf" <<CONF
# written by bench/idle.sh
hostname = bench-buzon.$DOMAIN
local_domains = $DOMAIN
smtp.listen = 127.0.0.1:$BUZON_SMTP
imap.listen = 127.0.0.1:$BUZON_IMAP
imaps.listen = 127.0.0.1:$BUZON_IMAPS
tls.cert = $WORK/cert.pem
tls.key = $WORK/key.pem
data_dir = $B/data
users = file:$B/passwd
mailbox = maildir:$B/mail/%n/Maildir
pid_file = $B/buzon.pid
auth.cleartext_networks = 127.0.0.0/8
max_connections = 4000
max_connections_per_ip = 2000
log_level = warn
CONF
    "$BUZON" check-config -c "$B/buzon.conf" >"$B/check-config.out" 2>&1 ||
        die "buzon rejects $B/buzon.conf: $(tail -3 "$B/check-config.out")"
    # `workers` (the event-loop server's pool size) only when this binary knows it.
    cp "$B/buzon.conf" "$B/workers.conf"
    echo "workers = $WORKERS" >>"$B/workers.conf"
    if "$BUZON" check-config -c "$B/workers.conf" >/dev/null 2>&1; then
        mv "$B/workers.conf" "$B/buzon.conf"
        NOTES+=("buzon: workers = $WORKERS (the binary knows the key)")
    else
        rm -f "$B/workers.conf"
        NOTES+=("buzon: this binary does not know \`workers\` (a thread per connection); not set")
    fi
    NOTES+=("buzon: max_connections = 4000, max_connections_per_ip = 2000; $(du -b "$BUZON" | cut -f1) bytes binary, tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')")
}

buzon_start() {
    "$BUZON" serve -c "$B/buzon.conf" >>"$B/buzon.log" 2>&1 &
    BUZON_PID=$!
    wait_listen "$BUZON_IMAP" && wait_listen "$BUZON_IMAPS" ||
        die "buzon does not listen on 127.0.0.1:$BUZON_IMAP/$BUZON_IMAPS; its log ends: $(tail -5 "$B/buzon.log")"
}

buzon_stop() {
    [[ -n "$BUZON_PID" ]] || return 0
    kill -TERM "$BUZON_PID" 2>/dev/null || true
    wait_gone "$BUZON_PID"
    wait "$BUZON_PID" 2>/dev/null || true
    BUZON_PID=""
}

# The serving process: the pid file names it (in case buzon ever forks).
buzon_pid() {
    if [[ -s "$B/buzon.pid" ]]; then tr -d ' \n' <"$B/buzon.pid"; else echo "$BUZON_PID"; fi
}

# -------------------------------------------------------------- dovecot ---
DC_IMAP=""
DC_IMAPS=""
dovecot_setup() {
    mkdir -p "$DC/run" "$DC/state"
    mkmaildirs "$DC/mail" "$MAIL_UID:$MAIL_GID"
    passwd_file >"$DC/passwd"
    chown root:dovecot "$DC/passwd"
    chmod 640 "$DC/passwd"
    DC_IMAP="$(free_port)"
    DC_IMAPS="$(free_port)"
    local plimit=$((CONNS + 100)) climit=$((CONNS * 3 + 1000))
    cat >"$DC/dovecot.conf" <<CONF
# written by bench/idle.sh: a private, loopback-only Dovecot for the idle bench
instance_name = buzon-bench-idle
base_dir = $DC/run
state_dir = $DC/state
log_path = $DC/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$WORK/cert.pem
ssl_key = <$WORK/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:$DC/mail/%n/Maildir
# Raised so $CONNS connections fit (Debian: 100 processes per service, 1000
# clients per process, 10 connections per user and address).
default_process_limit = $plimit
default_client_limit = $climit
namespace inbox {
  inbox = yes
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC/passwd
}
userdb {
  driver = static
  args = uid=$MAIL_UID gid=$MAIL_GID home=$DC/mail/%n
}
protocol imap {
  mail_max_userip_connections = $CONNS
}
service imap {
  process_limit = $plimit
}
service imap-login {
  process_limit = $plimit
  inet_listener imap {
    address = 127.0.0.1
    port = $DC_IMAP
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $DC_IMAPS
  }
}
CONF
    doveconf -c "$DC/dovecot.conf" -n >"$DC/doveconf.out" 2>&1 ||
        die "dovecot rejects $DC/dovecot.conf: $(tail -3 "$DC/doveconf.out")"
    NOTES+=("dovecot $(dovecot --version | cut -d' ' -f1): limits raised in its config: default_process_limit = $plimit, default_client_limit = $climit, service imap/imap-login process_limit = $plimit, mail_max_userip_connections = $CONNS; process model at its defaults (imap client_limit = 1, imap-login service_count = 1)")
    if grep -qi warning "$DC/doveconf.out"; then
        NOTES+=("doveconf warns: $(grep -i warning "$DC/doveconf.out" | head -3 | tr '\n' ' ')")
    fi
}

dovecot_start() {
    dovecot -c "$DC/dovecot.conf" || die "dovecot -c $DC/dovecot.conf failed (see $DC/dovecot.log)"
    wait_listen "$DC_IMAP" && wait_listen "$DC_IMAPS" ||
        die "dovecot does not listen on 127.0.0.1:$DC_IMAP/$DC_IMAPS; its log ends: $(tail -5 "$DC/dovecot.log")"
    local i
    for ((i = 0; i < 50; i++)); do [[ -s "$DC/run/master.pid" ]] && break; sleep 0.1; done
    DC_PID="$(tr -d ' \n' <"$DC/run/master.pid")"
}

dovecot_stop() {
    [[ -n "$DC_PID" ]] || return 0
    kill -TERM "$DC_PID" 2>/dev/null || true
    wait_gone "$DC_PID"
    DC_PID=""
}

dovecot_pid() { echo "$DC_PID"; }

# ------------------------------------------------------------- measuring ---
FAILED=0
# phase SERVER LABEL [client options]: a fresh server, the client run, stop.
phase() {
    local s=$1 label=$2
    shift 2
    "${s}_start"
    sleep 2
    log "$s/$label: opening $CONNS connections"
    "${CLIENT[@]}" run --server "$s" --label "$label" --pid "$("${s}_pid")" -n "$CONNS" \
        --users "$USERS" --src-addrs "$SRC_ADDRS" --settle "$SETTLE" --password "$PASS" \
        "$@" >>"$RESULTS" || { FAILED=1; log "$s/$label: the client reports a failure (see the table)"; }
    "${s}_stop"
}

SERVERS=()
[[ "$ONLY" == dovecot ]] || SERVERS+=(buzon)
[[ "$ONLY" == buzon ]] || SERVERS+=(dovecot)

install_missing
log "CONNS=$CONNS USERS=$USERS SRC_ADDRS=$SRC_ADDRS DELIVERIES=$DELIVERIES servers: ${SERVERS[*]}; work dir $WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=localhost" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 ||
    die "openssl could not make a certificate"
chmod 600 "$WORK/key.pem"
INOTIFY_NOW="$(cat /proc/sys/fs/inotify/max_user_instances)"
if ((INOTIFY_NOW < CONNS + 200)); then
    # Dovecot's imap processes all run as nobody, each with an inotify
    # instance for IDLE; past the limit they fall back to polling.
    INOTIFY_OLD="$INOTIFY_NOW"
    echo $((CONNS + 200)) >/proc/sys/fs/inotify/max_user_instances
    NOTES+=("fs.inotify.max_user_instances raised from $INOTIFY_OLD to $((CONNS + 200)) for the run (Dovecot: an inotify instance per imap process)")
fi
for s in "${SERVERS[@]}"; do "${s}_setup"; done

for s in "${SERVERS[@]}"; do
    if [[ "$s" == buzon ]]; then
        phase buzon plain --port "$BUZON_IMAP" --deliveries "$DELIVERIES" \
            --maildir-fmt "$B/mail/{user}/Maildir" --smtp-port "$BUZON_SMTP" \
            --intake-port "$BUZON_SMTP" --intake-rcpt "intake@$DOMAIN" \
            --intake-maildir "$B/mail/intake/Maildir" --intake-msgs "$INTAKE_MSGS" \
            --intake-sessions "$INTAKE_SESSIONS" --intake-runs "$INTAKE_RUNS"
        phase buzon tls --port "$BUZON_IMAPS" --tls --deliveries 0
    else
        phase dovecot plain --port "$DC_IMAP" --deliveries "$DELIVERIES" \
            --maildir-fmt "$DC/mail/{user}/Maildir" --owner "$MAIL_UID:$MAIL_GID"
        phase dovecot tls --port "$DC_IMAPS" --tls --deliveries 0
    fi
done

echo "---- idle IMAP connections: $CONNS in IDLE (users u000..u$(printf '%03d' $((USERS - 1))), from $SRC_ADDRS loopback addresses) ----"
echo "INFO idle: machine $NCPU CPUs, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r); RLIMIT_NOFILE $(ulimit -n); loadavg at the end $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${NOTES[@]}"; do echo "INFO idle: $n"; done
echo "INFO idle: EXISTS latency: $DELIVERIES deliveries to u000, timed to each of its $((CONNS / USERS)) idle connections, from the rename (or SMTP's final 250) to the EXISTS line"
[[ "$ONLY" == dovecot ]] ||
    echo "INFO idle: SMTP intake (buzon only; Postfix's intake is in bench/bench.sh): $INTAKE_MSGS x 1 KiB over $INTAKE_SESSIONS sessions (smtp-source, a connection per message) to a user with no idle connection; runs alternate with and without the idle connections"
[[ "$ONLY" == buzon ]] || echo "INFO idle: Dovecot reports a change 0.5 s after inotify sees it, by design (NOTIFY_DELAY_MSECS in its mailbox-watch.c groups changes)"
if grep -q '"ok": false' "$RESULTS"; then
    grep '"ok": false' "$RESULTS" | cut -c1-600 | sed 's/^/PROBLEM idle: /'
fi
# Dovecot's complaints, less the "Killed with signal 15" of our own stops.
DC_WARN="$(grep -iE 'warning|error|fatal' "$DC/dovecot.log" 2>/dev/null | grep -v 'Killed with signal 15' || true)"
if [[ -n "$DC_WARN" ]]; then
    echo "INFO idle: dovecot log, $(wc -l <<<"$DC_WARN") warning/error lines, first: $(head -2 <<<"$DC_WARN" | cut -c1-200 | tr '\n' ' ')"
fi
# Threads the connections may add: buzon's worker pool (WORKERS when the binary
# has one) and a few more; a thread per connection is far beyond that.
"${CLIENT[@]}" report "$RESULTS" --max-threads-added "$((WORKERS + 4))"
exit "$FAILED"
