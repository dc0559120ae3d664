#!/usr/bin/env bash
# Stop the single-node CI Slurm cluster started by start_slurm.sh:
# cancel all jobs, then stop slurmd, slurmctld, slurmdbd, mariadbd (if started
# for accounting) and munged.  Packages, config and state stay in place, so
# start_slurm.sh brings the cluster back in a few seconds.
#   --keep-munge   leave munged running
set -uo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

KEEP_MUNGE=0
[ "${1:-}" = "--keep-munge" ] && KEEP_MUNGE=1

# `pgrep -x NAME` without procps (not in minimal Debian images): pids whose comm is NAME
pgrep_x() {
    local d found=1
    for d in /proc/[0-9]*; do
        [ "$(cat "$d/comm" 2>/dev/null)" = "$1" ] && { echo "${d#/proc/}"; found=0; }
    done
    return $found
}

log() { echo "[stop_slurm] $*"; }

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then exec sudo -n bash "$0" "$@"; fi
    echo "[stop_slurm] ERROR: must run as root" >&2; exit 1
fi

# 1. cancel every job while the controller is still up
if command -v squeue >/dev/null && timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; then
    jobs="$(timeout 10 squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ')"
    if [ -n "${jobs// /}" ]; then
        log "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        timeout 20 scancel $jobs 2>/dev/null
        for _ in $(seq 1 40); do
            [ -z "$(timeout 10 squeue -h -o '%A' 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

# 2. stop daemons: SIGTERM, wait up to 10 s, then SIGKILL (by pid)
stop_proc() {  # name [pidfile]
    local name="$1" pidfile="${2:-}" pids p
    pids="$(pgrep_x "$name" | tr '\n' ' ')"
    if [ -n "$pidfile" ] && [ -s "$pidfile" ]; then pids="$pids $(cat "$pidfile")"; fi
    pids="$(for p in $pids; do [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$name" ] && echo "$p"; done | sort -u | tr '\n' ' ')"
    [ -z "${pids// /}" ] && return 0
    log "stopping $name ($pids)"
    for p in $pids; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 1 50); do
        local alive=0
        for p in $pids; do [ -d "/proc/$p" ] && [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$name" ] && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.2
    done
    for p in $pids; do
        if [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$name" ]; then
            log "$name ($p) did not exit, SIGKILL"; kill -KILL "$p" 2>/dev/null
        fi
    done
    [ -n "$pidfile" ] && rm -f "$pidfile"
}

stop_proc slurmd /run/slurmd.pid
stop_proc slurmstepd
stop_proc slurmctld /run/slurmctld.pid
stop_proc slurmdbd /run/slurmdbd.pid
stop_proc mariadbd /run/mysqld/mysqld.pid
if [ "$KEEP_MUNGE" = 0 ]; then
    stop_proc munged /run/munge/munged.pid
fi
rm -f /etc/slurm/runner-ci.env
log "done"
