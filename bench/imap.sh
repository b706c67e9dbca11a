#!/usr/bin/env bash
# bench/imap.sh -- the IMAP part of `make bench`: buzon against Dovecot on
# the same 5000-message Maildir, loopback only.
#
# Run as root (it installs dovecot-imapd if missing, starts a private
# Dovecot instance and may drop the page cache).
#
# Mailbox: bench/imap_mkmaildir.py builds MSGS realistic messages (about
# 4 KiB, varied senders, subjects and MIME structure; deterministic for SEED)
# once; each server gets its own copy (cp -a), so neither sees the other's
# index or uidlist files.
#
# Session (bench/imap_client.py, stdlib imaplib, each step timed): LOGIN,
# SELECT INBOX, UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE), UID FETCH 1:*
# (BODY.PEEK[]), UID SEARCH SUBJECT "invoice", UID SEARCH BODY "quokka-4711",
# LOGOUT.  Every answer is checked against the generator's manifest (counts,
# sizes, SHA-256 of the bodies, search hits); a run that fails a check is
# reported with the end of its exchange and left out of the medians, and the
# script exits 1.  The first warm session's FLAGS, RFC822.SIZE and ENVELOPE
# answers of the two servers are also compared message by message
# (INFO imap.compare).
#
# Modes, RUNS times each, interleaved between the servers:
#   first  fresh server process, no index and no uidlist: a first-ever open
#          (Dovecot: its INDEX= and CONTROL= dirs emptied; buzon: the
#          Maildir's dovecot-uidlist, -keywords and -uidvalidity removed)
#   cold   fresh server process, no index, uidlist kept (Dovecot: INDEX=
#          emptied; buzon keeps nothing else on disk)
#   warm   the same session again right after `cold`, everything cached
# Before first and cold runs the page cache is dropped when the kernel allows
# it (echo 3 > /proc/sys/vm/drop_caches; the output says whether it did), and
# the servers' program files are read back in, so only the mailbox is cold.
#
# Memory: summed VmRSS (and PSS) of each server's process tree at every
# fresh start (idle, no client yet), and per IMAP connection: CONNS logged-in
# connections with INBOX selected and idle, (after - before) / CONNS.
#
# Output: `FIGURE imap.<server>.<step>.<mode> value ms` (medians over RUNS),
# memory figures, then `FIGURE ratio.imap.<figure> value buzon/dovecot`.
#
#   buzon:   target/release/buzon serve -c CONF, imap.listen = 127.0.0.1:<free
#            port> (and smtp.listen on another), users = file:PASSWD
#   dovecot: a private instance: own config, base_dir, state_dir, log,
#            passwd-file, index and control dirs under the temp dir, mail as
#            nobody; /etc/dovecot is not read or touched; listens on
#            127.0.0.1:<free port> only; ssl = no, plaintext auth allowed
#
# Concurrency (last, it changes the mailbox): CONC_CLIENTS sessions on INBOX at once for
# CONC_SECONDS (bench/imap_concurrent.py): `FIGURE imapconc.<server>.<cmd>.median|p90` and the
# number of commands that failed.
#
# Knobs: RUNS=3 MSGS=5000 CONNS=50 SEED=1 ONLY=buzon|dovecot DROP_CACHES=1
#        CONC_CLIENTS=10 CONC_SECONDS=30
#        BUZON=target/release/buzon KEEP=1 (keep the temp dir)
# Safety: every address is 127.0.0.1; every wait is bounded; only processes
# started here are stopped, by pid (buzon) or by Dovecot's master pid.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY="${PYTHON:-python3}"
CLIENT=("$PY" "$HERE/imap_client.py")

RUNS="${RUNS:-3}"
MSGS="${MSGS:-5000}"
CONNS="${CONNS:-50}"
CONC_CLIENTS="${CONC_CLIENTS:-10}"
CONC_SECONDS="${CONC_SECONDS:-30}"
SEED="${SEED:-1}"
ONLY="${ONLY:-}"
DROP_CACHES="${DROP_CACHES:-1}"
BUZON="${BUZON:-$ROOT/target/release/buzon}"
SESSION_TIMEOUT="${SESSION_TIMEOUT:-120}"

DOMAIN=example.test
USER_LINE="bench@$DOMAIN:{PLAIN}benchpass"
MAIL_UID="$(id -u nobody)"
MAIL_GID="$(id -g nobody)"

log() { echo "[imap-bench $(date +%T)] $*" >&2; }
die() { log "$*"; exit 1; }

[[ "$(id -u)" == 0 ]] || die "run as root (it installs and starts Dovecot, drops the page cache)"
case "$ONLY" in "" | buzon | dovecot) ;; *) die "ONLY must be buzon or dovecot" ;; esac
command -v ss >/dev/null || die "ss (iproute2) is missing"

WORK="$(mktemp -d /var/tmp/buzon-bench-imap.XXXXXX)"
chmod 755 "$WORK"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
MANIFEST="$WORK/src/imap-manifest.json"
B="$WORK/buzon"
DC="$WORK/dovecot"
BUZON_PID=""
DC_PID=""
BUZON_IMAP_PORT=""
DC_PORT=""

cleanup() {
    buzon_stop || true
    dovecot_stop || true
    if [[ "${KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free TCP port on 127.0.0.1, chosen by the kernel.
free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Bounded wait until something listens on 127.0.0.1:PORT (no connection is
# made, so no server process is spawned and no memory touched).
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
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "pid $pid still there after 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------- page cache ---
CACHE_NOTE=""
drop_caches() {
    [[ "$DROP_CACHES" == 1 ]] || { CACHE_NOTE="no (DROP_CACHES=0)"; return 0; }
    sync
    if { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
        CACHE_NOTE="yes"
    else
        CACHE_NOTE="no (not permitted here)"
    fi
    # Program files back in: "cold" is about the mailbox, not about exec().
    cat "$BUZON" /usr/sbin/dovecot /usr/lib/dovecot/{imap,imap-login,auth,anvil,config,log} \
        /usr/lib/dovecot/libdovecot*.so* "$HERE"/imap_client.py "$HERE"/benchlib.py \
        >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- buzon ---
buzon_setup() {
    [[ -x "$BUZON" ]] || die "$BUZON is missing: run \`make\` first"
    mkdir -p "$B/data"
    cp -a "$WORK/src/Maildir" "$B/Maildir"
    echo "$USER_LINE" >"$B/passwd"
    BUZON_IMAP_PORT="$(free_port)"
    local sport
    sport="$(free_port)"
    cat >"$B/buzon.conf" <<CONF
# written by bench/imap.sh
hostname = bench-buzon.$DOMAIN
local_domains = $DOMAIN
smtp.listen = 127.0.0.1:$sport
imap.listen = 127.0.0.1:$BUZON_IMAP_PORT
data_dir = $B/data
users = file:$B/passwd
mailbox = maildir:$B/Maildir
pid_file = $B/buzon.pid
auth.cleartext_networks = 127.0.0.0/8
max_connections = $((CONNS + 50))
max_connections_per_ip = $((CONNS + 50))
log_level = warn
CONF
    "$BUZON" check-config -c "$B/buzon.conf" >"$B/check-config.out" 2>&1 ||
        die "buzon rejects $B/buzon.conf: $(tail -3 "$B/check-config.out")"
}

buzon_start() {
    "$BUZON" serve -c "$B/buzon.conf" >>"$B/buzon.log" 2>&1 &
    BUZON_PID=$!
    wait_listen "$BUZON_IMAP_PORT" ||
        die "buzon does not listen on 127.0.0.1:$BUZON_IMAP_PORT; its log ends: $(tail -5 "$B/buzon.log")"
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

buzon_reset() { # MODE: first = no uidlist either
    [[ "$1" == first ]] && rm -f "$B/Maildir"/dovecot-uidlist "$B/Maildir"/dovecot-keywords \
        "$B/Maildir"/dovecot-uidvalidity*
    return 0
}

# -------------------------------------------------------------- dovecot ---
dovecot_install() {
    [[ -x /usr/lib/dovecot/imap ]] && command -v dovecot >/dev/null && return 0
    log "installing dovecot-imapd"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q dovecot-imapd >/dev/null
}

dovecot_setup() {
    dovecot_install
    mkdir -p "$DC/run" "$DC/state" "$DC/index" "$DC/control" "$DC/home"
    cp -a "$WORK/src/Maildir" "$DC/Maildir"
    chown -R "$MAIL_UID:$MAIL_GID" "$DC/Maildir" "$DC/index" "$DC/control" "$DC/home"
    echo "$USER_LINE" >"$DC/passwd"
    chown root:dovecot "$DC/passwd"
    chmod 640 "$DC/passwd"
    DC_PORT="$(free_port)"
    cat >"$DC/dovecot.conf" <<CONF
# written by bench/imap.sh: a private, loopback-only Dovecot for the IMAP bench
instance_name = buzon-bench-imap
base_dir = $DC/run
state_dir = $DC/state
log_path = $DC/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:$DC/Maildir:INDEX=$DC/index:CONTROL=$DC/control
default_process_limit = $((CONNS + 50))
namespace inbox {
  inbox = yes
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC/passwd
}
userdb {
  driver = static
  args = uid=$MAIL_UID gid=$MAIL_GID home=$DC/home
}
protocol imap {
  mail_max_userip_connections = $((CONNS + 10))
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DC_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
CONF
    doveconf -c "$DC/dovecot.conf" -n >"$DC/doveconf.out" 2>&1 ||
        die "dovecot rejects $DC/dovecot.conf: $(tail -3 "$DC/doveconf.out")"
}

dovecot_start() {
    dovecot -c "$DC/dovecot.conf" || die "dovecot -c $DC/dovecot.conf failed (see $DC/dovecot.log)"
    wait_listen "$DC_PORT" ||
        die "dovecot does not listen on 127.0.0.1:$DC_PORT; its log ends: $(tail -5 "$DC/dovecot.log")"
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

dovecot_reset() { # MODE: first = no uidlist either
    find "$DC/index" -mindepth 1 -delete
    [[ "$1" == first ]] && find "$DC/control" -mindepth 1 -delete
    return 0
}

dovecot_pid() { echo "$DC_PID"; }

# ------------------------------------------------------------- measuring ---
port_of() { if [[ $1 == buzon ]]; then echo "$BUZON_IMAP_PORT"; else echo "$DC_PORT"; fi; }

# restart SERVER MODE: stop, forget its index state, drop caches, start; then
# record its idle memory (fresh process, no client yet).
restart() {
    local s=$1 mode=$2
    "${s}_stop"
    "${s}_reset" "$mode"
    drop_caches
    "${s}_start"
    sleep 1
    "${CLIENT[@]}" rss "$("${s}_pid")" --server "$s" >>"$RESULTS"
}

# session SERVER MODE RUN [--dump FILE]: one timed, checked session.
session() {
    local s=$1 mode=$2 run=$3 out rc=0
    shift 3
    out="$(timeout "$SESSION_TIMEOUT" "${CLIENT[@]}" session --port "$(port_of "$s")" \
        --manifest "$MANIFEST" --pid "$("${s}_pid")" --server "$s" --mode "$mode" --run "$run" "$@")" ||
        rc=$?
    [[ -n "$out" ]] || out="{\"kind\": \"session\", \"server\": \"$s\", \"mode\": \"$mode\", \"run\": $run, \"ok\": false, \"problems\": [\"client exited with status $rc and no output (timeout ${SESSION_TIMEOUT}s?)\"]}"
    echo "$out" >>"$RESULTS"
}

SERVERS=()
[[ "$ONLY" == dovecot ]] || SERVERS+=(buzon)
[[ "$ONLY" == buzon ]] || SERVERS+=(dovecot)

log "RUNS=$RUNS MSGS=$MSGS CONNS=$CONNS SEED=$SEED servers: ${SERVERS[*]}; work dir $WORK"
log "building the Maildir ($MSGS messages)"
"$PY" "$HERE/imap_mkmaildir.py" "$WORK/src/Maildir" --count "$MSGS" --seed "$SEED" >/dev/null
for s in "${SERVERS[@]}"; do "${s}_setup"; done

for ((i = 1; i <= RUNS; i++)); do
    for mode in first cold; do
        for s in "${SERVERS[@]}"; do
            restart "$s" "$mode"
            session "$s" "$mode" "$i"
            # The first warm session also saves FLAGS/RFC822.SIZE/ENVELOPE per
            # message, to compare the servers' answers (not only their speed).
            if [[ "$mode" == cold && $i == 1 ]]; then
                session "$s" warm "$i" --dump "$WORK/$s.meta"
            elif [[ "$mode" == cold ]]; then
                session "$s" warm "$i"
            fi
        done
    done
done

for s in "${SERVERS[@]}"; do
    log "$s: $CONNS idle connections with INBOX selected"
    out="$("${CLIENT[@]}" conns --port "$(port_of "$s")" --pid "$("${s}_pid")" --server "$s" -n "$CONNS")" || true
    echo "$out" >>"$RESULTS"
done

# Last, as it changes the mailbox: CONC_CLIENTS sessions selecting, fetching, storing, expunging
# and appending on the one INBOX for CONC_SECONDS (bench/imap_concurrent.py): latency per command
# and the commands that failed (RFC 2180 4.1: none need to).
CONC_OUT="$WORK/concurrent.txt"
: >"$CONC_OUT"
for s in "${SERVERS[@]}"; do
    log "$s: $CONC_CLIENTS sessions at once on INBOX for ${CONC_SECONDS}s"
    "$PY" "$HERE/imap_concurrent.py" --port "$(port_of "$s")" --user "bench@$DOMAIN" --password benchpass \
        --clients "$CONC_CLIENTS" --seconds "$CONC_SECONDS" --label "$s" --allow-failures >>"$CONC_OUT" ||
        echo "INFO imapconc.$s: the load generator failed" >>"$CONC_OUT"
    "${s}_stop"
done

echo "---- IMAP figures (median of $RUNS runs; $MSGS messages, $(du -sh "$WORK/src/Maildir" | cut -f1) Maildir) ----"
echo "INFO imap: page cache dropped before first/cold runs: $CACHE_NOTE"
echo "INFO imap: manifest $(cat "$MANIFEST")"
echo "INFO imap: dovecot $(dovecot --version | cut -d' ' -f1); loadavg at the end $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -s "$WORK/buzon.meta" && -s "$WORK/dovecot.meta" ]]; then
    "${CLIENT[@]}" compare "$WORK/buzon.meta" "$WORK/dovecot.meta"
fi
"$PY" "$HERE/imap_report.py" "$RESULTS"
cat "$CONC_OUT"
