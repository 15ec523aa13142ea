#!/usr/bin/env bash
# Start a real single-node SLURM cluster on this machine, for tests/test_slurm.py.
#
# Installs Debian's slurm-wlm and munge when missing (needs root and apt-get), writes
# /etc/slurm/slurm.conf for one node named after `hostname -s` with this machine's CPUs and
# memory, plus one stand-in GPU, and starts munged, slurmctld and slurmd directly, without
# systemd. Waits until the node is idle. Run tests/slurm/stop_cluster.sh to stop it.
#
# - Accounting is disabled, so `sacct` never answers: Snakemake must run with
#   `--slurm-status-command squeue`, which sees finished jobs because MinJobAge is large.
# - The configuration is at the compiled-in default path /etc/slurm/slurm.conf, because the
#   jobstep plugin drops SLURM_CONF from the job's environment.
# - The GPU is a GRES backed by /dev/null (slurmd drops file-less GPUs): jobs asking for
#   --gpus=1 are scheduled as on a GPU node and see CUDA_VISIBLE_DEVICES=0, but get no GPU.
#
# Exit status: 0 when the cluster is up; 2 when it cannot be started here (not root, no
# apt-get, packages cannot be installed, a real cluster's configuration is present), with
# the reason on stderr; 1 on any other failure, with the daemons' log tails on stderr.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
STATE=/var/spool/brainalign-slurm
LOGS=/var/log/brainalign-slurm
CONF=/etc/slurm/slurm.conf
MARK="# Written by tests/slurm/start_cluster.sh"

skip() { echo "cannot start a SLURM cluster here: $*" >&2; exit 2; }

[[ $(id -u) -eq 0 ]] || skip "not root (uid $(id -u)); the daemons and /etc/slurm need root"
if [[ -e $CONF ]] && ! grep -qxF "$MARK" "$CONF"; then
    skip "$CONF exists and was not written by this script; not replacing a real cluster's configuration"
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || skip "slurm-wlm and munge are not installed and apt-get is unavailable"
    export DEBIAN_FRONTEND=noninteractive
    apt_log=/tmp/brainalign-slurm-apt.log
    if ! apt-get install -y -q --no-install-recommends slurm-wlm munge >"$apt_log" 2>&1; then
        apt-get update -q >>"$apt_log" 2>&1 || true
        apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$apt_log" 2>&1 \
            || skip "apt-get install slurm-wlm munge failed: $(tail -n 1 "$apt_log")"
    fi
fi

host=$(hostname -s)
# slurmd -C prints this machine's real geometry; slurmd drains a node configured otherwise.
geometry=$(slurmd -C | head -n 1 | grep -o 'CPUs=.*ThreadsPerCore=[0-9]*' || echo "CPUs=$(nproc --all)")
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$LOGS"
cat >"$CONF" <<CONF
$MARK
# A single-node test cluster: node $host, one partition, no accounting, no cgroups.
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
SlurmctldPidFile=/run/brainalign-slurmctld.pid
SlurmdPidFile=/run/brainalign-slurmd.pid
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
echo "NodeName=$host Name=gpu File=/dev/null" >/etc/slurm/gres.conf
rm -f /etc/slurm/cgroup.conf

# munge: a key (the package normally makes one), then the daemon as the munge user, unless
# one already runs. The marker tells stop_cluster.sh that this script started it.
mkdir -p /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged || skip "munged failed to start"
    touch "$STATE/munged.started"
fi
for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.2; done
munge -n | unmunge >/dev/null 2>&1 || skip "munge does not authenticate"

# SLURM daemons: restart those a previous start left (they may hold an older configuration),
# then a controller with fresh state (-c) and the node daemon.
"$HERE/stop_cluster.sh" --restart >/dev/null
/usr/sbin/slurmctld -c
/usr/sbin/slurmd
state=unknown
for _ in $(seq 120); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    if [[ $state == drain* || $state == down* ]]; then
        # a node that registered before the controller read gres.conf may be drained once
        scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
    elif [[ $state == idle ]]; then
        echo "SLURM cluster up: node $host ($geometry RealMemory=$mem_mb Gres=gpu:1), state idle"
        exit 0
    fi
    sleep 0.5
done
echo "SLURM node $host did not become idle (state: ${state:-unknown}); log tails:" >&2
tail -n 20 "$LOGS/slurmctld.log" "$LOGS/slurmd.log" >&2 || true
exit 1
