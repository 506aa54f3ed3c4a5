#!/usr/bin/env bash
# Stop the test cluster started by ci/slurm/start.sh: cancel its jobs, then stop slurmd,
# slurmctld and (only if start.sh started it) munged, each by its recorded PID.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

if cluster_up; then
    jobs=$(squeue -h -t PENDING,RUNNING -o '%i' 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        log "cancelling jobs $jobs"
        # shellcheck disable=SC2086
        scancel $jobs || true
    fi
fi

stop_pid() { # pidfile program
    local pidfile=$1 prog=$2 pid
    if ! pid_is "$pidfile" "$prog"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$prog (PID $pid) still running after 10 s: SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
    log "stopped $prog (PID $pid)"
    rm -f "$pidfile"
}

stop_pid "$STATE_DIR/slurmd.pid" slurmd
stop_pid "$STATE_DIR/slurmctld.pid" slurmctld
# munged.pid is only there when start.sh started munged.
stop_pid "$STATE_DIR/munged.pid" munged
# The /etc/slurm/slurm.conf symlink of start.sh, if it still points to our file.
if [ -L "$ETC_CONF" ] && [ "$(readlink "$ETC_CONF")" = "$SLURM_CONF" ]; then
    rm -f "$ETC_CONF"
    log "removed the $ETC_CONF symlink"
fi
exit 0
