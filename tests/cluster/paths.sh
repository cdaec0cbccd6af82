# Shared by slurm_up.sh and slurm_down.sh: where the throw-away test cluster lives (sourced).
# shellcheck shell=bash disable=SC2034
MARKER="# posepipe throw-away test cluster (tests/cluster/slurm_up.sh)"
CONF_DIR=/etc/slurm
STATE_DIR=/var/lib/slurm
LOG_DIR=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
# The packages slurm_up.sh installed (slurm_down.sh --purge removes exactly these).
INSTALLED_LIST=/var/lib/posepipe-slurm-test/installed-packages
