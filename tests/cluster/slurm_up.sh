#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster (munge + slurmctld + slurmd, one fake GPU) on this
# machine, for tests/test_slurm.py and for trying `snakemake --profile profiles/slurm` by hand.
#
#   sudo tests/cluster/slurm_up.sh      # install (Debian/Ubuntu packages), configure, start, wait
#   tests/cluster/slurm_down.sh         # stop it again (add --purge to remove packages and config)
#
# Needs root and apt-get (Debian 12: Slurm 22.05, munge 0.5). Works without systemd: the daemons
# are started here in the background and stopped by the PIDs in their PID files. Safe to call
# twice: a cluster that is already up is checked and left running. It refuses to touch a machine
# whose /etc/slurm/slurm.conf was not written by this script (a real cluster node).
#
# Partitions: "cpu" (the default) and "gpu", both on this one node, matching profiles/slurm.
# Override with POSEPIPE_SLURM_PARTITIONS="name1 name2" (the first is the default partition).
# Exit status: 0 ready; 2 cannot run here (not root, no apt-get, foreign Slurm config);
# 3 package installation failed; 4 the daemons did not come up (see the logs it prints).
set -euo pipefail

# shellcheck source=paths.sh
source "$(dirname "${BASH_SOURCE[0]}")/paths.sh"
PARTITIONS=${POSEPIPE_SLURM_PARTITIONS:-cpu gpu}
TIMEOUT=${POSEPIPE_SLURM_TIMEOUT:-60}
PACKAGES=(munge slurmctld slurmd slurm-client)

say() { echo "slurm_up: $*"; }
die() {
    local code=$1
    shift
    echo "slurm_up: ERROR: $*" >&2
    exit "$code"
}

alive() { # alive PIDFILE: the process named in PIDFILE is running
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

show_logs() {
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        [[ -f $f ]] && { echo "---- last lines of $f" >&2; tail -n 20 "$f" >&2; }
    done
    return 0
}

# ---- can this machine run it? ---------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || die 2 "must run as root (it installs packages and starts daemons)"
command -v apt-get >/dev/null || die 2 "apt-get not found: this script needs a Debian/Ubuntu machine"
if [[ -f $CONF_DIR/slurm.conf ]] && ! grep -qF "$MARKER" "$CONF_DIR/slurm.conf"; then
    die 2 "$CONF_DIR/slurm.conf exists and was not written by this script; not touching a real cluster"
fi

# ---- already up? ----------------------------------------------------------------------------
if alive "$MUNGE_PID" && alive "$CTLD_PID" && alive "$SLURMD_PID"; then
    if [[ $(scontrol ping 2>/dev/null) == *UP* && $(sinfo -h -o %T 2>/dev/null) =~ ^(idle|mixed|allocated) ]]; then
        say "already running (slurmctld pid $(cat $CTLD_PID), slurmd pid $(cat $SLURMD_PID)); nothing to do"
        exit 0
    fi
fi

# ---- packages -------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f '${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    before=$(dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" {print $2}' | sort)
    say "installing ${missing[*]} (apt-get install --no-install-recommends)"
    # A fresh image may have no package lists yet: update when apt knows no candidate, or on failure.
    if ! grep -q "Candidate: [0-9]" <<<"$(apt-cache policy slurmctld 2>/dev/null)"; then
        say "apt-get update"
        apt-get update -qq || die 3 "apt-get update failed (no network or no package mirror?)"
    fi
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/posepipe-slurm-apt.log 2>&1; then
        say "install failed; apt-get update and one more try"
        apt-get update -qq || true
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/posepipe-slurm-apt.log 2>&1 ||
            { tail -n 20 /tmp/posepipe-slurm-apt.log >&2; die 3 "apt-get install ${missing[*]} failed"; }
    fi
    rm -f /tmp/posepipe-slurm-apt.log
    after=$(dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" {print $2}' | sort)
    install -d "$(dirname "$INSTALLED_LIST")"
    comm -13 <(echo "$before") <(echo "$after") >>"$INSTALLED_LIST"
    say "installed $(comm -13 <(echo "$before") <(echo "$after") | wc -l) packages"
else
    say "packages already installed: ${PACKAGES[*]}"
fi
for exe in munged slurmctld slurmd sbatch squeue sinfo scontrol; do
    command -v "$exe" >/dev/null || die 3 "$exe not found after installing ${PACKAGES[*]}"
done
id munge >/dev/null 2>&1 || die 3 "user munge missing (the munge package should create it)"
id slurm >/dev/null 2>&1 || die 3 "user slurm missing (the slurm packages should create it)"

# ---- stop leftovers of an earlier, half-started run -------------------------------------------
for pidfile in "$SLURMD_PID" "$CTLD_PID" "$MUNGE_PID"; do
    if [[ -e $pidfile ]] && ! alive "$pidfile"; then
        rm -f "$pidfile"
    fi
done

# ---- munge ----------------------------------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if alive "$MUNGE_PID"; then
    say "munged already running (pid $(cat $MUNGE_PID))"
else
    say "starting munged"
    # munged refuses to run as root.
    runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID" ||
        { show_logs; die 4 "munged did not start"; }
fi
for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
done
munge -n | unmunge >/dev/null 2>&1 || { show_logs; die 4 "munge does not answer (munge -n | unmunge)"; }

# ---- slurm.conf and gres.conf ---------------------------------------------------------------
host=$(hostname -s)
cpus=$(nproc)
mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n1)
[[ -n $mem ]] || mem=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
mem=$((mem * 9 / 10))
install -d -o slurm -g slurm -m 0755 "$STATE_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd" "$LOG_DIR"
install -d -m 0755 "$CONF_DIR"

{
    echo "$MARKER"
    echo "# Written $(date -Is); remove with tests/cluster/slurm_down.sh --purge"
    cat <<EOF
ClusterName=posepipe
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
# Finished jobs stay visible to squeue and scontrol this long (snakemake --slurm-status-command
# squeue needs it, and tests/test_slurm.py reads the finished jobs back).
MinJobAge=600
GresTypes=gpu
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} Gres=gpu:1 State=UNKNOWN
EOF
    default=YES
    for p in $PARTITIONS; do
        echo "PartitionName=$p Nodes=${host} Default=$default MaxTime=INFINITE State=UP"
        default=NO
    done
} >"$CONF_DIR/slurm.conf.new"
mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
# One fake GPU: no autodetection, and a device file (without File= the node drains).
cat >"$CONF_DIR/gres.conf" <<EOF
$MARKER
AutoDetect=off
NodeName=${host} Name=gpu File=/dev/null
EOF
chmod 0644 "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"
say "node $host: $cpus CPUs, ${mem} MB, 1 fake GPU; partitions: $PARTITIONS"

# ---- daemons --------------------------------------------------------------------------------
if alive "$CTLD_PID"; then
    say "slurmctld already running (pid $(cat $CTLD_PID)); reconfiguring"
    scontrol reconfigure || true
else
    say "starting slurmctld"
    # -c: start with a clean job state (a throw-away cluster keeps nothing from an earlier run).
    slurmctld -c || { show_logs; die 4 "slurmctld did not start"; }
fi
if alive "$SLURMD_PID"; then
    say "slurmd already running (pid $(cat $SLURMD_PID))"
else
    say "starting slurmd"
    slurmd || { show_logs; die 4 "slurmd did not start"; }
fi

# ---- readiness ------------------------------------------------------------------------------
deadline=$((SECONDS + TIMEOUT))
until [[ $(scontrol ping 2>/dev/null) == *UP* ]]; do
    ((SECONDS < deadline)) || { show_logs; die 4 "slurmctld not UP after ${TIMEOUT}s (scontrol ping)"; }
    sleep 0.5
done
until [[ $(sinfo -h -o %T 2>/dev/null | sort -u) == idle ]]; do
    if ((SECONDS >= deadline)); then
        sinfo -N -l >&2 || true
        show_logs
        die 4 "node not idle after ${TIMEOUT}s (sinfo -h -o %T: $(sinfo -h -o %T 2>&1 | tr '\n' ' '))"
    fi
    state=$(sinfo -h -o %T 2>/dev/null | head -n1)
    # A node left down or drained by an earlier run: ReturnToService=2 usually fixes it; help it along.
    if [[ $state == down* || $state == drain* ]]; then
        scontrol update NodeName="$host" State=RESUME 2>/dev/null || true
    fi
    sleep 0.5
done
say "ready in ${SECONDS}s: $(sinfo -h -o '%P %T %D nodes, %c CPUs, gres %G' | tr '\n' ';')"
