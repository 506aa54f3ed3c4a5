#!/usr/bin/env bash
# Install what the SLURM check needs (as root): the SLURM daemons and clients and munge
# (Debian/Ubuntu packages), and the Snakemake SLURM executor plugin into the project's venv
# (the `slurm` extra of pyproject.toml).
#   ci/slurm/install.sh            VENV=path to use another venv (default .venv)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"
VENV=${VENV:-$ROOT/.venv}

if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v sbatch >/dev/null && command -v munged >/dev/null; then
    log "slurm-wlm and munge already installed ($(slurmctld -V))"
else
    [ "$(id -u)" = 0 ] || die "installing slurm-wlm and munge needs root (apt-get)"
    log "apt-get install slurm-wlm munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

[ -x "$VENV/bin/pip" ] || die "no venv at $VENV (make venv first, or set VENV)"
# The requirements of the `slurm` extra, read from pyproject.toml (not `pip install -e
# .[slurm]`, which would reinstall the project itself under whoever is using the venv).
mapfile -t REQS < <("$VENV/bin/python" -c '
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print(*tomllib.load(f)["project"]["optional-dependencies"]["slurm"], sep="\n")
' "$ROOT/pyproject.toml")
log "pip install ${REQS[*]} into $VENV"
"$VENV/bin/pip" install --quiet "${REQS[@]}"
"$VENV/bin/python" -c 'import importlib.metadata as m; print("[ci/slurm] snakemake-executor-plugin-slurm", m.version("snakemake-executor-plugin-slurm"))' >&2
