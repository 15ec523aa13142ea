#!/usr/bin/env bash
# Start a real single-node SLURM cluster on this machine, for tests/test_slurm.py.
#
# Installs Debian's slurm-wlm and munge when missing (needs root and apt-get), writes
# /etc/slurm/slurm.conf for one node named after `hostname -s` with this machine's CPUs and
# memory (plus one stand-in GPU GRES, so GPU requests are scheduled without a GPU), and starts
# munged, slurmctld and slurmd directly, without systemd. Waits until the node is idle.
#
# Accounting is disabled, so `sacct` does not answer: Snakemake must use
# `--slurm-status-command squeue`, which works because MinJobAge keeps finished jobs visible.
# /etc/slurm/slurm.conf is the compiled-in default path: the jobstep plugin drops SLURM_CONF.
#
# Exit status: 0 when the cluster is up; 2 when it cannot be started here (not root, no
# apt-get, packages cannot be installed) with the reason on stderr; 1 on any other failure.
set -euo pipefail

STATE=${BRAINALIGN_SLURM_STATE:-/var/spool/brainalign-slurm}
LOGS=/var/log/slurm
CONF=/etc/slurm/slurm.conf

skip() { echo "cannot start a SLURM cluster here: $*" >&2; exit 2; }

[[ $(id -u) -eq 0 ]] || skip "not root (uid $(id -u)); the daemons and /etc/slurm need root"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || skip "slurm-wlm/munge are not installed and apt-get is unavailable"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends slurm-wlm munge >/tmp/brainalign-slurm-apt.log 2>&1; then
        apt-get update -q >>/tmp/brainalign-slurm-apt.log 2>&1 || true
        apt-get install -y -q --no-install-recommends slurm-wlm munge >>/tmp/brainalign-slurm-apt.log 2>&1 \
            || skip "apt-get install slurm-wlm munge failed (see /tmp/brainalign-slurm-apt.log)"
    fi
fi

host=$(hostname -s)
cpus=$(nproc --all)
# slurmd -C prints this machine's real geometry; keep it so slurmd accepts the node.
geometry=$(slurmd -C | head -1 | grep -o 'CPUs=.*ThreadsPerCore=[0-9]*' || echo "CPUs=$cpus")
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$LOGS" /run/munge
cat >"$CONF" <<CONF
# Written by tests/slurm/start_cluster.sh: a single-node test cluster.
ClusterName=brainalign
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=86400
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
GresTypes=gpu
NodeName=$host $geometry RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
# One stand-in GPU: slurmd drops file-less GPUs, so the GRES points at /dev/null. Jobs asking
# for --gpus=1 are scheduled as on a GPU node; with task/none nothing is bound or confined.
echo "NodeName=$host Name=gpu File=/dev/null" >/etc/slurm/gres.conf
rm -f /etc/slurm/cgroup.conf

# munge: key (the package normally makes one), then the daemon as the munge user.
if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! pgrep -u munge -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged || skip "munged failed to start"
fi
for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.2; done
munge -n | unmunge >/dev/null || skip "munge does not authenticate"

# SLURM daemons: restart those a previous start left (they may hold an older config), then a
# fresh controller state (-c) and the node daemon.
"$(dirname "$0")/stop_cluster.sh" --keep-munge >/dev/null
/usr/sbin/slurmctld -c
/usr/sbin/slurmd
for _ in $(seq 120); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    if [[ $state == drain* || $state == down* ]]; then
        # a node registering before the controller had read gres.conf may be drained once
        scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
    elif [[ $state == idle ]]; then
        echo "SLURM cluster up: node $host ($geometry RealMemory=$mem_mb), state $state"
        exit 0
    fi
    sleep 0.5
done
echo "SLURM node $host did not become idle (state: ${state:-unknown}); logs:" >&2
tail -n 20 "$LOGS/slurmctld.log" "$LOGS/slurmd.log" >&2 || true
exit 1
