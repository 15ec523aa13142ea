#!/usr/bin/env bash
# Stop the single-node SLURM cluster started by tests/slurm/start_cluster.sh: cancel its
# jobs, then end slurmd, slurmctld and munged, each by the pid its
# start recorded. munged is only stopped when start_cluster.sh started it. The configuration
# it wrote is removed: with slurm-client installed and a slurm.conf naming a controller that
# is down, every `scontrol` waits ~10 s, and the slurm executor plugin runs one each time
# Snakemake starts, even for local runs. The packages stay, for the next start.
# --restart (used by start_cluster.sh) stops only slurmd and slurmctld.
set -uo pipefail

STATE=/var/spool/brainalign-slurm
MARK="# Written by tests/slurm/start_cluster.sh"

stop_pidfile() {
    local pidfile=$1 pid
    [[ -s $pidfile ]] || return 0
    pid=$(<"$pidfile")
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

ours=false
grep -qxF "$MARK" /etc/slurm/slurm.conf 2>/dev/null && ours=true
if $ours && [[ -s /run/brainalign-slurmctld.pid ]]; then
    scancel --quiet --full --partition=main 2>/dev/null || true
fi
stop_pidfile /run/brainalign-slurmd.pid
stop_pidfile /run/brainalign-slurmctld.pid
if [[ ${1:-} != --restart && -e $STATE/munged.started ]]; then
    stop_pidfile /run/munge/munged.pid
    rm -f "$STATE/munged.started"
fi
if $ours && [[ ${1:-} != --restart ]]; then
    rm -f /etc/slurm/slurm.conf /etc/slurm/gres.conf
fi
echo "SLURM cluster stopped"
