#!/usr/bin/env bash
# Stop the throw-away SLURM cluster that tests/cluster/slurm_up.sh started.
#
#   tests/cluster/slurm_down.sh           # cancel jobs, stop slurmd, slurmctld, munged; clear state
#   tests/cluster/slurm_down.sh --purge   # ... and also remove the packages and the config files
#
# Daemons are stopped by the PIDs in their PID files, in reverse start order, then the PID files
# and the cluster's job state and spool are removed (logs stay in /var/log/slurm until --purge).
# Safe to call twice, or when nothing was started. It does nothing to a Slurm installation whose
# /etc/slurm/slurm.conf was not written by slurm_up.sh.
set -uo pipefail

# shellcheck source=paths.sh
source "$(dirname "${BASH_SOURCE[0]}")/paths.sh"

purge=0
case ${1:-} in
    --purge) purge=1 ;;
    "") ;;
    *)
        echo "usage: $0 [--purge]" >&2
        exit 2
        ;;
esac

say() { echo "slurm_down: $*"; }

if [[ $(id -u) -ne 0 ]]; then
    say "not root: nothing to stop (slurm_up.sh needs root, so it cannot have run as this user)"
    exit 0
fi
if [[ -f $CONF_DIR/slurm.conf ]] && ! grep -qF "$MARKER" "$CONF_DIR/slurm.conf"; then
    say "$CONF_DIR/slurm.conf was not written by slurm_up.sh; leaving this Slurm alone"
    exit 0
fi

stop() { # stop NAME PIDFILE: SIGTERM, wait up to 15 s, then SIGKILL; remove the PID file
    local name=$1 pidfile=$2 pid
    if [[ ! -s $pidfile ]]; then
        say "$name: not running (no $pidfile)"
        rm -f "$pidfile"
        return 0
    fi
    pid=$(cat "$pidfile")
    if ! kill -0 "$pid" 2>/dev/null; then
        say "$name: not running (stale $pidfile, pid $pid)"
        rm -f "$pidfile"
        return 0
    fi
    # Only signal the process if it is the daemon the PID file names (PIDs get reused).
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) != "$name" ]]; then
        say "$name: pid $pid in $pidfile is $(cat "/proc/$pid/comm" 2>/dev/null), not $name; not signalling it"
        rm -f "$pidfile"
        return 0
    fi
    say "$name: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name: still running after 15 s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        sleep 0.5
    fi
    rm -f "$pidfile"
}

# Cancel what is still queued or running, so no job step outlives its slurmd.
if command -v scancel >/dev/null && [[ -s $CTLD_PID ]] && kill -0 "$(cat "$CTLD_PID")" 2>/dev/null; then
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [[ -n ${jobs// /} ]]; then
        say "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null || true
        sleep 1
    fi
fi

stop slurmd "$SLURMD_PID"
stop slurmctld "$CTLD_PID"
stop munged "$MUNGE_PID"

# Job scripts of cancelled jobs (slurmstepd) exit with slurmd; report anything left.
left=""
for name in slurmstepd slurmd slurmctld munged; do
    for pid in $(pgrep -x "$name"); do left+="$name($pid) "; done
done
[[ -n $left ]] && say "WARNING: still running: $left(not started by slurm_up.sh, or stuck)"

rm -rf "${STATE_DIR:?}/slurmctld" "${STATE_DIR:?}/slurmd"

if ((purge)); then
    export DEBIAN_FRONTEND=noninteractive
    # Only the packages slurm_up.sh installed (and that are still installed).
    installed=()
    if [[ -f $INSTALLED_LIST ]]; then
        while read -r p; do
            [[ $(dpkg-query -W -f '${Status}' "$p" 2>/dev/null) == "install ok installed" ]] && installed+=("$p")
        done < <(sort -u "$INSTALLED_LIST")
    fi
    if ((${#installed[@]})); then
        say "purging the ${#installed[@]} packages slurm_up.sh installed: ${installed[*]}"
        apt-get purge -y -qq "${installed[@]}" >/tmp/posepipe-slurm-apt.log 2>&1 ||
            say "WARNING: apt-get purge failed, see /tmp/posepipe-slurm-apt.log"
    else
        say "no packages to purge (none installed by slurm_up.sh)"
    fi
    say "removing config, state and logs"
    rm -f "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"
    rmdir "$CONF_DIR" 2>/dev/null || true
    rm -rf "$LOG_DIR" "$STATE_DIR" "$(dirname "$INSTALLED_LIST")"
fi
say "done"
