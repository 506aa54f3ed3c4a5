# shellcheck shell=bash disable=SC2034
# Shared settings of the ci/slurm scripts (sourced, not run).
# AM4CM_SLURM_DIR    where the test cluster keeps its config, state, logs and PID files
#                    (default /tmp/am4cm-slurm); SLURM commands find it through SLURM_CONF.
# AM4CM_SLURM_GPUS   fake GPUs of the node (default 2)
# AM4CM_SLURM_PORTS  slurmctld and slurmd ports (default "6817 6818")
STATE_DIR=${AM4CM_SLURM_DIR:-/tmp/am4cm-slurm}
# Always our own cluster's file, whatever SLURM_CONF was: these scripts must never talk to
# (or overwrite the configuration of) another cluster.
export SLURM_CONF="$STATE_DIR/slurm.conf"
# Where SLURM commands look when SLURM_CONF is unset (Debian's build).
ETC_CONF=/etc/slurm/slurm.conf
FAKE_GPUS=${AM4CM_SLURM_GPUS:-2}
read -r CTLD_PORT SLURMD_PORT <<<"${AM4CM_SLURM_PORTS:-6817 6818}"
NODE=localhost
[[ $FAKE_GPUS =~ ^[1-9][0-9]*$ ]] || FAKE_GPUS=1

log() { printf '[ci/slurm] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# True when our cluster's controller answers.
cluster_up() {
    pid_is "$STATE_DIR/slurmctld.pid" slurmctld && scontrol ping 2>/dev/null | grep -q ' is UP'
}

# The node's state as sinfo reports it (idle, mixed, allocated, down*, drained...).
node_state() {
    sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n 1
}

# True when the PID file names a live process whose executable is the one expected (a
# recycled PID of another program is left alone).
pid_is() { # pidfile program
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}
