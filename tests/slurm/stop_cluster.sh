#!/usr/bin/env bash
# Stop the single-node SLURM cluster started by tests/slurm/start_cluster.sh.
# Ends only the daemons named by their pid files (slurmd, slurmctld, then munged unless
# --keep-munge); leaves packages and /etc/slurm in place for the next start.
set -uo pipefail

stop_pidfile() {
    local pidfile=$1 pid
    [[ -s $pidfile ]] || return 0
    pid=$(<"$pidfile")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

# Cancel what is left in the queue, then stop the node daemon before the controller.
command -v scancel >/dev/null && scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
stop_pidfile /run/slurmd.pid
stop_pidfile /run/slurmctld.pid
if [[ ${1:-} != --keep-munge ]]; then
    stop_pidfile /run/munge/munged.pid
fi
echo "SLURM cluster stopped"
