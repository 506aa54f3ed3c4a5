#!/usr/bin/env bash
# Start a single-node SLURM cluster on localhost (as root): munged (unless one already
# answers), slurmctld and slurmd, with a slurm.conf written from slurm.conf.in (CPUs and
# memory detected by `slurmd -C`), then wait until the node is idle.
# Everything (config, state, logs, PID files) lives under $AM4CM_SLURM_DIR (default
# /tmp/am4cm-slurm); /etc/slurm/slurm.conf becomes a symlink to its slurm.conf (only when
# there is none: see below). Use the cluster with
#   export SLURM_CONF=/tmp/am4cm-slurm/slurm.conf
# and stop it with ci/slurm/stop.sh (which stops only what this script started).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

[ "$(id -u)" = 0 ] || die "start.sh runs the SLURM daemons as root: run it as root"
for cmd in munged munge unmunge slurmctld slurmd sinfo scontrol; do
    command -v "$cmd" >/dev/null || die "$cmd not found: run ci/slurm/install.sh first"
done
if pid_is "$STATE_DIR/slurmctld.pid" slurmctld || pid_is "$STATE_DIR/slurmd.pid" slurmd; then
    die "a test cluster is already running from $STATE_DIR: ci/slurm/stop.sh first"
fi

# The commands inside a job cannot rely on SLURM_CONF: the executor plugin's jobstep drops
# every SLURM_* variable before it calls srun, which then reads the default
# /etc/slurm/slurm.conf. So that path must be our file too: a symlink, made only where no
# slurm.conf exists (never over a real cluster's) and removed again by stop.sh.
if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
    if [ ! -L "$ETC_CONF" ] || [ "$(readlink "$ETC_CONF")" != "$SLURM_CONF" ]; then
        die "$ETC_CONF exists (another SLURM?): jobs would read it instead of ours"
    fi
fi

# A fresh state directory (no jobs or node state from an earlier cluster); only one that
# is empty or was made by this script is wiped.
if [ -d "$STATE_DIR" ] && [ -n "$(ls -A "$STATE_DIR")" ] && [ ! -e "$STATE_DIR/.am4cm-slurm" ]; then
    die "$STATE_DIR is not empty and was not made by start.sh: set AM4CM_SLURM_DIR elsewhere"
fi
rm -rf "$STATE_DIR"
mkdir -p "$STATE_DIR/spool/slurmctld" "$STATE_DIR/spool/slurmd" "$STATE_DIR/log"
touch "$STATE_DIR/.am4cm-slurm"

# Whatever goes wrong from here on, stop the daemons started so far.
UP=0
on_exit() {
    if [ "$UP" != 1 ]; then
        log "start failed; stopping what was started"
        "$HERE/stop.sh" || true
    fi
}
trap on_exit EXIT

# munge: the credentials of SLURM. Reuse a munged that already answers (a laptop may run
# one for a real cluster); otherwise start one and record its PID for stop.sh.
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already running: using it"
else
    if [ ! -s /etc/munge/munge.key ]; then
        log "creating /etc/munge/munge.key"
        runuser -u munge -- mungekey --create
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$STATE_DIR/munged.pid"
    pid_is "$STATE_DIR/munged.pid" munged || die "munged did not start"
    log "munged started (PID $(cat "$STATE_DIR/munged.pid"))"
fi
munge -n | unmunge >/dev/null || die "munge does not work"

# slurm.conf: the node as slurmd sees it (CPUs, sockets, cores, threads, memory).
HW=$(slurmd -C | head -n 1 | tr ' ' '\n' |
    grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore|RealMemory)=' |
    tr '\n' ' ')
[[ $HW == *CPUs=* && $HW == *RealMemory=* ]] || die "slurmd -C did not report CPUs/RealMemory"
sed -e "s|@STATE_DIR@|$STATE_DIR|g" -e "s|@NODE_HW@|${HW% }|" -e "s|@GPUS@|$FAKE_GPUS|" \
    -e "s|@CTLD_PORT@|$CTLD_PORT|" -e "s|@SLURMD_PORT@|$SLURMD_PORT|" \
    "$HERE/slurm.conf.in" >"$SLURM_CONF"
# The fake GPUs: SLURM wants one device file per GPU. Character devices that are really
# /dev/null (1:3); plain files where mknod is not allowed (slurmd logs an error, counts them
# all the same). gres.conf is read next to slurm.conf.
for ((i = 0; i < FAKE_GPUS; i++)); do
    mknod "$STATE_DIR/fakegpu$i" c 1 3 2>/dev/null || touch "$STATE_DIR/fakegpu$i"
done
echo "NodeName=$NODE Name=gpu File=$STATE_DIR/fakegpu[0-$((FAKE_GPUS - 1))]" >"$STATE_DIR/gres.conf"
log "node: ${HW% } gpu:$FAKE_GPUS (config $SLURM_CONF)"

if [ ! -L "$ETC_CONF" ]; then
    mkdir -p "$(dirname "$ETC_CONF")"
    ln -s "$SLURM_CONF" "$ETC_CONF"
    log "linked $ETC_CONF -> $SLURM_CONF"
fi

/usr/sbin/slurmctld -f "$SLURM_CONF"
/usr/sbin/slurmd -f "$SLURM_CONF" -N "$NODE"

# Wait for the node to come up idle (a few seconds).
state=""
for _ in $(seq 60); do
    state=$(node_state || true)
    [ "$state" = idle ] && break
    [[ $state == inval* || $state == drain* ]] && break # a config error: no use waiting
    sleep 1
done
if [ "$state" != idle ]; then
    log "node state: '${state:-none}'"
    tail -n 20 "$STATE_DIR/log/slurmctld.log" "$STATE_DIR/log/slurmd.log" >&2 || true
    exit 1 # on_exit stops the daemons
fi
UP=1
log "cluster up: slurmctld PID $(cat "$STATE_DIR/slurmctld.pid"), slurmd PID $(cat "$STATE_DIR/slurmd.pid")"
sinfo >&2
