#!/usr/bin/env bash
# The SLURM check: run the workflow on the tiny config (ci/slurm/config.yaml) twice, once
# with the local executor and once through profiles/slurm on the single-node test cluster,
# then check that every job went through sbatch and that both runs computed the same
# results (CSV/JSON/npy/model files; figures only need to exist).
#
#   ci/slurm/install.sh && ci/slurm/check_workflow.sh     (as root)
#
# Starts the test cluster (ci/slurm/start.sh) unless one answers already, and then stops it
# again on exit, failure included. Prints PASS/FAIL; exits non-zero on failure.
# Environment: VENV (default .venv), AM4CM_SLURM_WORK (working folder, default a new
# /tmp/am4cm-slurm-check.*; it is kept for inspection), AM4CM_SLURM_DIR (see common.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"
VENV=${VENV:-$ROOT/.venv}
SNAKEMAKE="$VENV/bin/snakemake"
# Both runs use the same thread count, so torch computes bit-identical results. The rules
# ask for 4 threads; the test node may have only 2 CPUs (sbatch would reject 4).
THREADS=2
# The tiny config only: neither the repository's config.yaml nor a real PASTIS.
unset PASTIS_PATH

fail() {
    log "FAIL: $*"
    exit 1
}

T0=$SECONDS
[ -x "$SNAKEMAKE" ] || fail "no snakemake at $SNAKEMAKE (make venv, or set VENV)"
"$VENV/bin/python" -c 'import snakemake_executor_plugin_slurm' 2>/dev/null ||
    fail "snakemake-executor-plugin-slurm is not installed in $VENV: ci/slurm/install.sh"
WORK=${AM4CM_SLURM_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/am4cm-slurm-check.XXXXXX")}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
rm -rf "$WORK/local" "$WORK/slurm"
mkdir -p "$WORK/local" "$WORK/slurm"

STARTED=0
cleanup() {
    local rc=$?
    if [ "$STARTED" = 1 ]; then
        "$HERE/stop.sh" || true
    fi
    log "working folder kept: $WORK"
    if [ "$rc" = 0 ]; then
        log "PASS: SLURM check in $((SECONDS - T0)) s"
    else
        log "FAIL (exit $rc) after $((SECONDS - T0)) s"
    fi
    exit "$rc"
}
trap cleanup EXIT
# Snakemake runs in the background so that a signal to this script is handled at once: it is
# passed on to Snakemake (which cancels its SLURM jobs), then the cluster is stopped.
CHILD=""
on_signal() {
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        log "interrupted: stopping Snakemake (PID $CHILD)"
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    exit 130
}
trap on_signal INT TERM
# Run a command in the background, its output to a log file, and wait for it; its status.
run_child() { # logfile command...
    local logfile=$1
    shift
    "$@" >"$logfile" 2>&1 &
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}

if cluster_up; then
    log "using the running test cluster ($SLURM_CONF)"
else
    STARTED=1
    "$HERE/start.sh"
fi
[ "$(node_state)" = idle ] || log "note: node state is $(node_state), not idle"

COMMON=(--snakefile "$ROOT/Snakefile" --configfile "$HERE/config.yaml"
    --max-threads "$THREADS" --nocolor)

# 1. Local run.
log "1/4 local run in $WORK/local"
t=$SECONDS
run_child "$WORK/local.log" \
    "$SNAKEMAKE" "${COMMON[@]}" --cores "$THREADS" --directory "$WORK/local" || {
    tail -n 40 "$WORK/local.log" >&2
    fail "local run failed (log: $WORK/local.log)"
}
LOCAL_S=$((SECONDS - t))
log "local run done in ${LOCAL_S} s"

# 2. SLURM run, through the profile as a user would run it. CI-only overrides: no retries
# (a failure should show at once), a quick first status check, and the sbatch logs of
# successful jobs kept for the checks below.
# Jobs submitted from here on have ids above the highest one squeue knows now.
LAST_ID=$(squeue -h -t all -o '%i' | sort -n | tail -n 1)
LAST_ID=${LAST_ID:-0}
log "2/4 SLURM run in $WORK/slurm (--profile profiles/slurm)"
t=$SECONDS
run_child "$WORK/slurm.log" \
    "$SNAKEMAKE" "${COMMON[@]}" --profile "$ROOT/profiles/slurm" --directory "$WORK/slurm" \
    --retries 0 --slurm-init-seconds-before-status-checks 1 --slurm-keep-successful-logs || {
    tail -n 40 "$WORK/slurm.log" >&2
    find "$WORK/slurm/.snakemake/slurm_logs" -name '*.log' -exec tail -n 20 {} + >&2 2>/dev/null || true
    fail "SLURM run failed (log: $WORK/slurm.log)"
}
SLURM_S=$((SECONDS - t))
log "SLURM run done in ${SLURM_S} s"

# 3. Did every job go through SLURM?
log "3/4 checking that the jobs ran as SLURM jobs"
# The rules the local run executed, but the target rule, which Snakemake keeps local.
mapfile -t RULES < <(grep -ohE '^(local)?(rule|checkpoint) [A-Za-z_0-9]+:' "$WORK/local/.snakemake/log/"*.snakemake.log |
    sed -E 's/^(local)?(rule|checkpoint) //; s/:$//' | grep -vx all | sort -u)
[ "${#RULES[@]}" -gt 0 ] || fail "no rules found in the local run's log"
# Rules the SLURM run executed in the main process instead of submitting them: only those
# the workflow declares as `localrules` may be, never the GPU rules.
mapfile -t LOCAL_IN_SLURM < <(grep -ohE '^local(rule|checkpoint) [A-Za-z_0-9]+:' "$WORK/slurm/.snakemake/log/"*.snakemake.log |
    sed -E 's/^local(rule|checkpoint) //; s/:$//' | grep -vx all | sort -u || true)
if [ "${#LOCAL_IN_SLURM[@]}" -gt 0 ]; then
    log "rules kept local by the workflow (localrules): ${LOCAL_IN_SLURM[*]}"
    for rule in train_model evaluate_test extract_attention; do
        [[ " ${LOCAL_IN_SLURM[*]} " != *" $rule "* ]] || fail "$rule ran locally, not through SLURM"
    done
    mapfile -t RULES < <(printf '%s\n' "${RULES[@]}" | grep -vxF -f <(printf '%s\n' "${LOCAL_IN_SLURM[@]}") || true)
fi
[ "${#RULES[@]}" -gt 0 ] || fail "no rule ran through SLURM"
# This run's SLURM jobs: id|state|partition|comment (rule_<name>[_wildcards_<...>])|time.
squeue -h -t all -o '%i|%T|%P|%k|%M' | awk -F'|' -v last="$LAST_ID" '$1 > last' | sort -n >"$WORK/slurm_jobs.txt"
printf '  %-6s %-10s %-5s %-6s %s\n' JOBID STATE PART TIME COMMENT >&2
awk -F'|' '{printf "  %-6s %-10s %-5s %-6s %s\n", $1, $2, $3, $5, $4}' "$WORK/slurm_jobs.txt" >&2
BAD=$(awk -F'|' '$2 != "COMPLETED"' "$WORK/slurm_jobs.txt")
[ -z "$BAD" ] || fail "SLURM jobs not COMPLETED: $BAD"
for rule in "${RULES[@]}"; do
    grep -qE "\|rule_${rule}(_wildcards_[^|]*)?\|" "$WORK/slurm_jobs.txt" ||
        fail "no COMPLETED SLURM job for rule $rule"
    ls "$WORK/slurm/.snakemake/slurm_logs/rule_${rule}"/ >/dev/null 2>&1 ||
        fail "no sbatch log under .snakemake/slurm_logs/rule_${rule}"
done
# The GPU rules of the profile: in the gpu partition with one (fake) GPU each.
for rule in train_model evaluate_test extract_attention; do
    while IFS='|' read -r id _ part _; do
        tres=$(scontrol show job "$id" | grep -oE 'TresPerJob=[^ ]*' || true)
        if [ "$part" != gpu ] || [[ $tres != *gpu:1* ]]; then
            fail "job $id of $rule: partition '$part', '${tres:-no GPU}' (profile asks for gpu, 1 GPU)"
        fi
    done < <(grep -E "\|rule_${rule}(_wildcards_[^|]*)?\|" "$WORK/slurm_jobs.txt" || true)
done
N_JOBS=$(wc -l <"$WORK/slurm_jobs.txt")
log "${N_JOBS} SLURM jobs, all COMPLETED, covering the ${#RULES[@]} rules: ${RULES[*]}"

# 4. Same results?
log "4/4 comparing results/ of the two runs"
"$VENV/bin/python" "$HERE/compare_results.py" "$WORK/local" "$WORK/slurm" ||
    fail "results differ between the local and the SLURM run"
log "timings: local run ${LOCAL_S} s, SLURM run ${SLURM_S} s"
