#!/usr/bin/env bash
# bench/bench.sh -- `make bench`: buzon against Postfix, same load, loopback only.
#
# Run as root (it installs postfix if missing and starts a private Postfix
# instance).  For each server: RUNS timed runs of smtp-source (from postfix)
# sending MSGS messages of SIZE bytes over SESSIONS parallel sessions to one
# local Maildir recipient; the clock stops when all MSGS files are in the
# Maildir's new/.  Memory: summed VmRSS of the server's process tree when
# idle (before the load) and at peak (sampled every 0.1 s), and VmHWM.
# Output: one `FIGURE name value unit` line per figure (medians over RUNS),
# then `FIGURE ratio.<figure> value buzon/postfix`.
#
#   buzon:   target/release/buzon serve -c CONF on 127.0.0.1:<free port>
#   postfix: a private instance (own config, queue and mail under the temp
#            dir; nothing under /etc/postfix is touched) on 127.0.0.2:<free
#            port], virtual(8) delivery to Maildir; it never relays
#            (default_transport = relay_transport = error).
#
# Knobs: RUNS=3 MSGS=5000 SIZE=4096 SESSIONS=10 WARMUP=500 ONLY=buzon|postfix
#        BUZON=target/release/buzon KEEP=1 (keep the temp dir)
# Safety: every address is 127.0.0.1 or 127.0.0.2; every wait is bounded;
# only processes started here are stopped, by pid or by `postfix -c DIR stop`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY="${PYTHON:-python3}"
LIB=("$PY" "$HERE/benchlib.py")

RUNS="${RUNS:-3}"
MSGS="${MSGS:-5000}"
SIZE="${SIZE:-4096}"
SESSIONS="${SESSIONS:-10}"
WARMUP="${WARMUP:-500}"
ONLY="${ONLY:-}"
BUZON="${BUZON:-$ROOT/target/release/buzon}"
TIMEOUT="${TIMEOUT:-300}"

DOMAIN=example.test
RCPT="bench@$DOMAIN"
SENDER="sender@example.net"

log() { echo "[bench $(date +%T)] $*" >&2; }
die() { log "$*"; exit 1; }

[[ "$(id -u)" == 0 ]] || die "run as root (it installs and starts Postfix)"

# maillog_file must live under /var (Postfix's maillog_file_prefixes).
WORK="$(mktemp -d /var/tmp/buzon-bench.XXXXXX)"
chmod 755 "$WORK"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
BUZON_PID=""
PF_DIR="$WORK/postfix"
PF_STARTED=""

cleanup() {
    if [[ -n "$BUZON_PID" ]] && kill -0 "$BUZON_PID" 2>/dev/null; then
        kill -TERM "$BUZON_PID" 2>/dev/null || true
        wait "$BUZON_PID" 2>/dev/null || true
    fi
    if [[ -n "$PF_STARTED" ]]; then
        postfix -c "$PF_DIR/etc" stop >/dev/null 2>&1 || true
    fi
    if [[ "${KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

install_postfix() {
    command -v smtp-source >/dev/null && command -v postfix >/dev/null && return 0
    log "installing postfix (debconf: No configuration)"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q postfix >/dev/null
}

# A free TCP port on ADDR, chosen by the kernel.
free_port() {
    "$PY" -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"
}

# Bounded wait until something listens on ADDR:PORT (no connection is made).
wait_listen() {
    local addr=$1 port=$2 i
    for ((i = 0; i < 100; i++)); do
        ss -Hltn "sport = :$port" | grep -q "$addr:$port" && return 0
        sleep 0.1
    done
    die "nothing listens on $addr:$port"
}

# clear_maildir DIR [OWNER]: an empty Maildir, owned by OWNER (uid:gid) if given.
clear_maildir() {
    local d=$1 owner=${2:-}
    mkdir -p "$d"/{new,cur,tmp}
    find "$d/new" "$d/cur" "$d/tmp" -type f -delete
    if [[ -n "$owner" ]]; then chown -R "$owner" "$(dirname "$d")"; fi
}

# Bounded wait for the Postfix queue to drain, so runs do not overlap.
postfix_idle() {
    local i n
    for ((i = 0; i < 600; i++)); do
        n="$(find "$PF_DIR/spool"/{maildrop,incoming,active,deferred,hold} -type f 2>/dev/null | wc -l)"
        [[ "$n" == 0 ]] && return 0
        sleep 0.1
    done
    log "postfix queue still holds $n files"
}

# load SERVER PID ADDR:PORT MAILDIR COUNT: one timed smtp-source run.
load() {
    "${LIB[@]}" load --server "$1" --pid "$2" --dir "$4/new" --expect "$5" --timeout "$TIMEOUT" -- \
        smtp-source -s "$SESSIONS" -m "$5" -l "$SIZE" -f "$SENDER" -t "$RCPT" -S "bench message" "$3"
}

# measure SERVER PID ADDR:PORT MAILDIR QUIESCE_FN [MAILDIR_OWNER]
measure() {
    local server=$1 pid=$2 addr=$3 maildir=$4 quiesce=$5 owner=${6:-} i
    # Idle: freshly started, no client has connected yet.
    sleep 2
    echo "{\"server\": \"$server\", \"idle_rss_kb\": $("${LIB[@]}" rss "$pid")}" >>"$RESULTS"
    log "$server: warm-up ($WARMUP messages)"
    clear_maildir "$maildir" "$owner"
    if [[ "$WARMUP" -gt 0 ]]; then
        load warmup "$pid" "$addr" "$maildir" "$WARMUP" >/dev/null || die "$server: warm-up incomplete"
    fi
    for ((i = 1; i <= RUNS; i++)); do
        "$quiesce"
        clear_maildir "$maildir" "$owner"
        sync
        sleep 1
        log "$server: run $i/$RUNS, $MSGS x $SIZE bytes over $SESSIONS sessions"
        load "$server" "$pid" "$addr" "$maildir" "$MSGS" | tee -a "$RESULTS" >&2 ||
            log "$server: run $i did not deliver all $MSGS messages (see above)"
    done
}

# ------------------------------------------------------------------ buzon ---
bench_buzon() {
    [[ -x "$BUZON" ]] || die "$BUZON is missing: run \`make\` first"
    local dir="$WORK/buzon" port conf
    port="$(free_port 127.0.0.1)"
    mkdir -p "$dir/data" "$dir/mail"
    echo "$RCPT:{PLAIN}benchpass" >"$dir/passwd"
    conf="$dir/buzon.conf"
    cat >"$conf" <<CONF
# written by bench/bench.sh
hostname = bench-buzon.$DOMAIN
local_domains = $DOMAIN
smtp.listen = 127.0.0.1:$port
data_dir = $dir/data
users = file:$dir/passwd
mailbox = maildir:$dir/mail/%d/%n/Maildir
pid_file = $dir/buzon.pid
max_connections = 64
max_connections_per_ip = 64
log_level = info
CONF
    local maildir="$dir/mail/$DOMAIN/bench/Maildir"
    "$BUZON" check-config -c "$conf" >/dev/null || die "buzon rejects $conf"
    log "buzon: starting on 127.0.0.1:$port"
    "$BUZON" serve -c "$conf" >"$dir/buzon.log" 2>&1 &
    BUZON_PID=$!
    wait_listen 127.0.0.1 "$port"
    # The pid file names the serving process (it may differ from $! if
    # buzon ever forks); measure that one.
    local pid=$BUZON_PID
    [[ -s "$dir/buzon.pid" ]] && pid="$(tr -d ' \n' <"$dir/buzon.pid")"
    echo "{\"server\": \"buzon\", \"binary_bytes\": $(stat -c %s "$BUZON")}" >>"$RESULTS"
    measure buzon "$pid" "127.0.0.1:$port" "$maildir" true
    kill -TERM "$BUZON_PID"
    wait "$BUZON_PID" 2>/dev/null || log "buzon exited with status $?"
    BUZON_PID=""
}

# ---------------------------------------------------------------- postfix ---
bench_postfix() {
    install_postfix
    local port uid gid etc="$PF_DIR/etc"
    port="$(free_port 127.0.0.2)"
    uid="$(id -u nobody)"
    gid="$(id -g nobody)"
    mkdir -p "$etc" "$PF_DIR/spool" "$PF_DIR/data" "$PF_DIR/mail"
    chown postfix "$PF_DIR/data"
    chown "$uid:$gid" "$PF_DIR/mail"
    cat >"$etc/main.cf" <<CF
# written by bench/bench.sh: a private, loopback-only instance
compatibility_level = 3.6
queue_directory = $PF_DIR/spool
data_directory = $PF_DIR/data
meta_directory = /etc/postfix
maillog_file = $PF_DIR/maillog
mail_owner = postfix
setgid_group = postdrop
myhostname = bench-postfix.$DOMAIN
mydomain = $DOMAIN
mydestination =
# smtpd binds 127.0.0.2:PORT itself (master.cf); Postfix refuses an
# inet_interfaces address that no interface carries explicitly.
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
default_transport = error
relay_transport = error
alias_maps =
alias_database =
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $PF_DIR/mail
virtual_mailbox_maps = texthash:$etc/vmailbox
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
smtpd_tls_security_level = none
smtp_tls_security_level = none
biff = no
CF
    echo "$RCPT bench/Maildir/" >"$etc/vmailbox"
    # Debian's services without chroot (the queue is private) and without the
    # pipe(8) transports; smtpd listens on 127.0.0.2:PORT only.
    cat >"$etc/master.cf" <<MF
127.0.0.2:$port inet n  -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
MF
    # Postfix prints its errors on standard error only when that is a tty.
    script -qec "postfix -c '$etc' check" /dev/null >&2 || die "postfix check failed for $etc"
    log "postfix: starting a private instance on 127.0.0.2:$port"
    script -qec "postfix -c '$etc' start" /dev/null >&2 || die "postfix -c $etc start failed (see $PF_DIR/maillog)"
    PF_STARTED=1
    wait_listen 127.0.0.2 "$port"
    local pidfile="$PF_DIR/spool/pid/master.pid" pid i
    for ((i = 0; i < 50; i++)); do [[ -s "$pidfile" ]] && break; sleep 0.1; done
    pid="$(tr -d ' ' <"$pidfile")"
    local bytes=0 f
    # The daemons this load runs, plus Postfix's own shared libraries.
    for f in /usr/lib/postfix/sbin/{master,smtpd,cleanup,qmgr,trivial-rewrite,virtual,anvil,postlogd} \
        /usr/lib/postfix/libpostfix-*.so*; do
        [[ -f "$f" && ! -L "$f" ]] && bytes=$((bytes + $(stat -c %s "$f")))
    done
    echo "{\"server\": \"postfix\", \"binary_bytes\": $bytes}" >>"$RESULTS"
    measure postfix "$pid" "127.0.0.2:$port" "$PF_DIR/mail/bench/Maildir" postfix_idle "$uid:$gid"
    postfix -c "$etc" stop >/dev/null 2>&1 || true
    PF_STARTED=""
}

command -v ss >/dev/null || die "ss (iproute2) is missing"
install_postfix
log "RUNS=$RUNS MSGS=$MSGS SIZE=$SIZE SESSIONS=$SESSIONS; work dir $WORK"
[[ "$ONLY" == postfix ]] || bench_buzon
[[ "$ONLY" == buzon ]] || bench_postfix
echo "---- figures (median of $RUNS runs; $MSGS messages of $SIZE bytes, $SESSIONS sessions) ----"
"${LIB[@]}" report "$RESULTS"

# Relaying instance to instance (needs dnsmasq, as the relay tests do).
if [[ "$ONLY" != postfix ]] && command -v dnsmasq >/dev/null; then
    echo "---- relaying: buzon on 127.0.0.2 to buzon on 127.0.0.3 via MX (bench/relay.py) ----"
    BUZON_BIN="$BUZON" python3 "$(dirname "$0")/relay.py" || log "relay bench failed"
fi
