#!/usr/bin/env bash
# Start (or verify) a single-node Slurm cluster on this machine for CI.
#
#   bash .ci/slurm/start_slurm.sh        # install if needed, configure, start, smoke-test
#
# Idempotent: if a healthy cluster with the same configuration is already
# running it only re-checks it; if the config changed or a daemon is dead it
# restarts the daemons.  Exit status 0 = cluster usable; non-zero = not usable,
# with the reason and the tail of the daemon logs printed (the test suite can
# skip with that message).  See .ci/slurm/README.md.
#
# Environment knobs (all optional):
#   RUNNER_SLURM_FAKE_GPUS      number of fake GPUs (GRES gpu) on the node, default 2; 0 = no GRES
#   RUNNER_SLURM_START_TIMEOUT  seconds to wait for the node to become idle, default 60
#   RUNNER_SLURM_CLUSTER_NAME   default "runnerci"
#   RUNNER_SLURM_SKIP_INSTALL   1 = never call apt-get (fail if binaries are missing)
#   RUNNER_SLURM_SKIP_SMOKE     1 = skip the srun smoke test
#   RUNNER_SLURM_ACCOUNTING     1 = also install/start MariaDB + slurmdbd so that `sacct`
#                               works (submitit polls sacct; without it a job killed before
#                               writing its result makes job.result() wait forever). ~240 MB more.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T0=$(date +%s.%N)

FAKE_GPUS="${RUNNER_SLURM_FAKE_GPUS:-2}"
TIMEOUT="${RUNNER_SLURM_START_TIMEOUT:-60}"
CLUSTER="${RUNNER_SLURM_CLUSTER_NAME:-runnerci}"
PARTITION=debug
ACCOUNTING="${RUNNER_SLURM_ACCOUNTING:-0}"

CONF_DIR=/etc/slurm                 # Debian's compiled-in default: no SLURM_CONF needed
CTLD_STATE=/var/spool/slurmctld
SLURMD_SPOOL=/var/spool/slurmd
LOG_DIR=/var/log/slurm
CTLD_LOG="$LOG_DIR/slurmctld.log"
SLURMD_LOG="$LOG_DIR/slurmd.log"
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
FAKE_GPU_DIR=/var/spool/slurmd-fakegpu   # regular files standing in for /dev/nvidiaN
ENV_FILE="$CONF_DIR/runner-ci.env"
MUNGE_KEY=/etc/munge/munge.key
MUNGE_LOG=/var/log/munge/munged.log
DBD_LOG="$LOG_DIR/slurmdbd.log"
DBD_PID=/run/slurmdbd.pid
MARIADB_LOG="$LOG_DIR/mariadb.log"

elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log()  { printf '[start_slurm %5ss] %s\n' "$(elapsed)" "$*"; }

# `pgrep -x NAME` without procps (not in minimal Debian images): pids whose comm is NAME
pgrep_x() {
    local d found=1
    for d in /proc/[0-9]*; do
        [ "$(cat "$d/comm" 2>/dev/null)" = "$1" ] && { echo "${d#/proc/}"; found=0; }
    done
    return $found
}

diagnostics() {
    echo "----- diagnostics -----"
    for p in munged mariadbd slurmdbd slurmctld slurmd; do
        printf '%-10s pids: %s\n' "$p" "$(pgrep_x "$p" | tr '\n' ' ')"
    done
    command -v scontrol >/dev/null && timeout 10 scontrol ping 2>&1 | sed 's/^/scontrol ping: /'
    command -v sinfo >/dev/null && timeout 10 sinfo -N -o '%N %T %C %G %E' 2>&1 | sed 's/^/sinfo: /'
    command -v scontrol >/dev/null && [ -n "${NODE:-}" ] && timeout 10 scontrol show node "$NODE" 2>&1 | sed 's/^/node: /'
    for f in "$MUNGE_LOG" "$MARIADB_LOG" "$DBD_LOG" "$CTLD_LOG" "$SLURMD_LOG"; do
        if [ -f "$f" ]; then echo "----- tail -n 25 $f -----"; tail -n 25 "$f"; fi
    done
    echo "-----------------------"
}

die() {
    echo "[start_slurm] ERROR: $*" >&2
    diagnostics >&2
    echo "[start_slurm] FAILED after $(elapsed)s: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- root check
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        exec sudo -n --preserve-env=RUNNER_SLURM_FAKE_GPUS,RUNNER_SLURM_START_TIMEOUT,RUNNER_SLURM_CLUSTER_NAME,RUNNER_SLURM_SKIP_INSTALL,RUNNER_SLURM_SKIP_SMOKE bash "$0" "$@"
    fi
    echo "[start_slurm] ERROR: must run as root (or with passwordless sudo)" >&2
    exit 1
fi

# ---------------------------------------------------------------- packages
PKGS=(slurmctld slurmd slurm-client munge)
BINS=(slurmctld slurmd sinfo srun sbatch scontrol munged munge unmunge)
if [ "$ACCOUNTING" = 1 ]; then
    PKGS+=(slurmdbd mariadb-server)
    BINS+=(slurmdbd mariadbd mysqladmin)
fi
have_binaries() {
    local b
    for b in "${BINS[@]}"; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || return 1
    done
}
export PATH="$PATH:/usr/sbin:/sbin"

if ! have_binaries; then
    [ "${RUNNER_SLURM_SKIP_INSTALL:-0}" = 1 ] && die "slurm/munge binaries missing and RUNNER_SLURM_SKIP_INSTALL=1"
    command -v apt-get >/dev/null || die "slurm/munge not installed and apt-get not available"
    log "installing ${PKGS[*]} (apt-get, --no-install-recommends)"
    export DEBIAN_FRONTEND=noninteractive
    # Keep maintainer scripts from trying to start services (no systemd here).
    policy_created=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_created=1
    fi
    APT=(apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
         -o DPkg::Lock::Timeout=300 --no-install-recommends)
    if ! "${APT[@]}" install "${PKGS[@]}" >/tmp/start_slurm.apt.log 2>&1; then
        log "apt-get install failed; running apt-get update and retrying"
        apt-get -q -o DPkg::Lock::Timeout=300 update >>/tmp/start_slurm.apt.log 2>&1
        if ! "${APT[@]}" install "${PKGS[@]}" >>/tmp/start_slurm.apt.log 2>&1; then
            [ "$policy_created" = 1 ] && rm -f /usr/sbin/policy-rc.d
            tail -n 30 /tmp/start_slurm.apt.log >&2
            die "apt-get install ${PKGS[*]} failed (full log: /tmp/start_slurm.apt.log)"
        fi
    fi
    [ "$policy_created" = 1 ] && rm -f /usr/sbin/policy-rc.d
    have_binaries || die "packages installed but binaries still missing"
    log "packages installed: $(dpkg-query -W -f='${Package}=${Version} ' "${PKGS[@]}")"
else
    log "packages already installed: $(dpkg-query -W -f='${Package}=${Version} ' "${PKGS[@]}" 2>/dev/null)"
fi

# ---------------------------------------------------------------- hostname
NODE="$(hostname -s 2>/dev/null || uname -n)"
NODE="${NODE%%.*}"
[ -n "$NODE" ] || die "cannot determine hostname"
# Daemons talk over 127.0.0.1 (NodeAddr / SlurmctldHost addr) so DNS is not
# needed for that, but some tools still resolve the node name: make sure it does.
if ! getent hosts "$NODE" >/dev/null 2>&1; then
    log "hostname '$NODE' does not resolve; adding it to /etc/hosts"
    echo "127.0.1.1 $NODE" >> /etc/hosts
fi

# ---------------------------------------------------------------- munge
start_munge() {
    id munge >/dev/null 2>&1 || die "user 'munge' missing (package munge broken?)"
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 /run/munge
    if [ ! -s "$MUNGE_KEY" ]; then
        log "creating munge key $MUNGE_KEY"
        if command -v mungekey >/dev/null || [ -x /usr/sbin/mungekey ]; then
            mungekey --create --keyfile="$MUNGE_KEY" --force >/dev/null 2>&1 \
                || dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
        fi
    fi
    chown munge:munge "$MUNGE_KEY" && chmod 0400 "$MUNGE_KEY"

    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        log "munged already running and working"
        return 0
    fi
    # stale daemon (e.g. key replaced) -> stop it
    local p
    for p in $(pgrep_x munged); do kill "$p" 2>/dev/null; done
    sleep 0.5
    log "starting munged"
    if command -v runuser >/dev/null; then
        runuser -u munge -- munged --force >>"$MUNGE_LOG.start" 2>&1
    else
        su -s /bin/sh munge -c "munged --force" >>"$MUNGE_LOG.start" 2>&1
    fi || { cat "$MUNGE_LOG.start" >&2; die "munged failed to start"; }
    local i
    for i in $(seq 1 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && { log "munge OK"; return 0; }
        sleep 0.2
    done
    die "munge credential round trip (munge -n | unmunge) fails"
}
start_munge

# ---------------------------------------------------------------- optional accounting (MariaDB + slurmdbd)
start_accounting() {
    local i p new changed=0
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    if ! mysqladmin --protocol=socket ping >/dev/null 2>&1; then
        [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null 2>&1 \
            || die "mariadb-install-db failed"
        log "starting mariadbd"
        setsid mariadbd --user=mysql --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock \
            --bind-address=127.0.0.1 --log-error="$MARIADB_LOG" --pid-file=/run/mysqld/mysqld.pid \
            </dev/null >/dev/null 2>&1 &
        for i in $(seq 1 $((TIMEOUT * 2))); do
            mysqladmin --protocol=socket ping >/dev/null 2>&1 && break
            sleep 0.5
        done
        mysqladmin --protocol=socket ping >/dev/null 2>&1 || die "mariadbd not answering after ${TIMEOUT}s"
    fi
    mysql --protocol=socket -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;" \
        || die "could not create the slurm MariaDB user"
    new="$(mktemp)"
    printf '%s\n' "# Generated by .ci/slurm/start_slurm.sh" \
        "AuthType=auth/munge" "DbdHost=localhost" "DbdAddr=127.0.0.1" "DbdPort=6819" \
        "SlurmUser=root" "LogFile=${DBD_LOG}" "PidFile=${DBD_PID}" \
        "StorageType=accounting_storage/mysql" "StorageHost=localhost" \
        "StorageUser=slurm" "StoragePass=slurm" "StorageLoc=slurm_acct_db" >"$new"
    cmp -s "$new" "$CONF_DIR/slurmdbd.conf" || changed=1
    install -m 0600 -o root -g root "$new" "$CONF_DIR/slurmdbd.conf"; rm -f "$new"
    if [ "$changed" = 1 ] || ! pgrep_x slurmdbd >/dev/null; then
        for p in $(pgrep_x slurmdbd); do kill "$p"; done
        sleep 0.5
        log "starting slurmdbd"
        slurmdbd >>"$LOG_DIR/slurmdbd.stdout" 2>&1 || die "slurmdbd failed to start"
    fi
    for i in $(seq 1 $((TIMEOUT * 2))); do
        timeout 10 sacctmgr -n show cluster >/dev/null 2>&1 && break
        sleep 0.5
    done
    timeout 10 sacctmgr -n show cluster >/dev/null 2>&1 || die "slurmdbd not answering (sacctmgr show cluster)"
    timeout 10 sacctmgr -n -P show cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER" \
        || timeout 20 sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 \
        || die "sacctmgr add cluster $CLUSTER failed"
    log "accounting (MariaDB + slurmdbd) OK"
}
mkdir -p "$CONF_DIR" "$LOG_DIR"
if [ "$ACCOUNTING" = 1 ]; then
    ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819"
else
    ACCT_LINES="# no accounting: sacct does not work (squeue/scontrol do); RUNNER_SLURM_ACCOUNTING=1 enables it
AccountingStorageType=accounting_storage/none"
fi

# ---------------------------------------------------------------- slurm.conf
# Hardware as slurmd sees it: "NodeName=x CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=23999"
HW="$(slurmd -C 2>/dev/null | head -n1)"
echo "$HW" | grep -q 'CPUs=' || die "'slurmd -C' gave no hardware line: $(slurmd -C 2>&1 | head -n3)"
HW_FIELDS="$(echo "$HW" | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')"
MEM="$(echo "$HW" | tr ' ' '\n' | sed -n 's/^RealMemory=//p')"
MEM=$(( ${MEM:-1024} * 95 / 100 ))     # a little below the real value: never "Low RealMemory" drain
CPUS="$(echo "$HW" | tr ' ' '\n' | sed -n 's/^CPUs=//p')"

GRES_NODE=""
GRES_GLOBAL=""
if [ "${FAKE_GPUS}" -gt 0 ] 2>/dev/null; then
    GRES_NODE="Gres=gpu:${FAKE_GPUS}"
    GRES_GLOBAL="GresTypes=gpu"
fi

mkdir -p "$CONF_DIR" "$CTLD_STATE" "$SLURMD_SPOOL" "$LOG_DIR"
NEW_CONF="$(mktemp)"
cat >"$NEW_CONF" <<EOF
# Generated by .ci/slurm/start_slurm.sh -- single-node CI cluster. Do not edit by hand.
ClusterName=${CLUSTER}
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=${CTLD_STATE}
SlurmdSpoolDir=${SLURMD_SPOOL}
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${CTLD_LOG}
SlurmdLogFile=${SLURMD_LOG}
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups in CI containers
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
${ACCT_LINES}
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# use the configured node values even if the hardware reports differently
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmdTimeout=300
Waittime=0
${GRES_GLOBAL}
NodeName=${NODE} NodeAddr=127.0.0.1 ${HW_FIELDS}RealMemory=${MEM} ${GRES_NODE} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF

NEW_GRES="$(mktemp)"
if [ -n "$GRES_NODE" ]; then
    # Fake GPUs: symlinks to /dev/null stand in for /dev/nvidiaN.  slurmd
    # requires File= to be a character/block device (a regular file is
    # rejected: "is not a valid character or block device"); with File=
    # entries slurmd exports CUDA_VISIBLE_DEVICES / SLURM_STEP_GPUS to jobs
    # (a Count-only GRES schedules but sets no CUDA_VISIBLE_DEVICES).
    # task/none => no device cgroup, so nothing is actually restricted.
    mkdir -p "$FAKE_GPU_DIR"
    for i in $(seq 0 $((FAKE_GPUS - 1))); do
        rm -f "$FAKE_GPU_DIR/nvidia$i" && ln -s /dev/null "$FAKE_GPU_DIR/nvidia$i"
    done
    cat >"$NEW_GRES" <<EOF
# Generated by .ci/slurm/start_slurm.sh -- fake GPUs (no real devices)
AutoDetect=off
NodeName=${NODE} Name=gpu File=${FAKE_GPU_DIR}/nvidia[0-$((FAKE_GPUS - 1))]
EOF
else
    echo "# Generated by .ci/slurm/start_slurm.sh -- no GRES" >"$NEW_GRES"
fi
# Debian ships no cgroup.conf; make sure a stale one cannot interfere.
[ -f "$CONF_DIR/cgroup.conf" ] || echo "# unused (proctrack/linuxproc, task/none)" > "$CONF_DIR/cgroup.conf"

CONF_CHANGED=0
cmp -s "$NEW_CONF" "$CONF_DIR/slurm.conf" || CONF_CHANGED=1
cmp -s "$NEW_GRES" "$CONF_DIR/gres.conf" || CONF_CHANGED=1
if [ "$CONF_CHANGED" = 1 ]; then
    log "writing $CONF_DIR/slurm.conf and gres.conf"
    install -m 0644 "$NEW_CONF" "$CONF_DIR/slurm.conf"
    install -m 0644 "$NEW_GRES" "$CONF_DIR/gres.conf"
fi
rm -f "$NEW_CONF" "$NEW_GRES"

# sacctmgr/slurmdbd clients read AccountingStorageType from slurm.conf, so
# accounting is started only after slurm.conf is written.
[ "$ACCOUNTING" = 1 ] && start_accounting

# ---------------------------------------------------------------- daemons
pid_alive() {  # pidfile name
    local pid
    [ -s "$1" ] || return 1
    pid="$(cat "$1" 2>/dev/null)"
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}
node_state() { timeout 10 sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1; }
ctld_up()    { timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; }

stop_daemons() {
    local name pids p i
    for name in slurmd slurmctld; do
        pids="$(pgrep_x "$name")"
        [ -z "$pids" ] && continue
        log "stopping $name ($pids)"
        for p in $pids; do kill -TERM "$p" 2>/dev/null; done
        for i in $(seq 1 50); do
            pgrep_x "$name" >/dev/null || break
            sleep 0.2
        done
        for p in $(pgrep_x "$name"); do kill -KILL "$p" 2>/dev/null; done
    done
}

slurmd_start_time() { timeout 10 scontrol show node "$NODE" 2>/dev/null | grep -o 'SlurmdStartTime=[^ ]*'; }
RUNNING=0
PREV_SLURMD_START=""
if pid_alive "$CTLD_PID" slurmctld && pid_alive "$SLURMD_PID" slurmd && ctld_up; then
    RUNNING=1
fi

if [ "$RUNNING" = 1 ] && [ "$CONF_CHANGED" = 0 ]; then
    log "slurmctld and slurmd already running with the current config"
else
    if [ "$RUNNING" = 1 ] || pgrep_x slurmctld >/dev/null || pgrep_x slurmd >/dev/null; then
        log "restarting daemons (config changed=$CONF_CHANGED, healthy=$RUNNING)"
        stop_daemons
    fi
    log "starting slurmctld"
    slurmctld >>"$LOG_DIR/slurmctld.stdout" 2>&1 || die "slurmctld failed to start (see $CTLD_LOG)"
    for i in $(seq 1 $((TIMEOUT * 2))); do
        ctld_up && break
        pgrep_x slurmctld >/dev/null || die "slurmctld exited right after start"
        sleep 0.5
    done
    ctld_up || die "slurmctld not answering 'scontrol ping' after ${TIMEOUT}s"
    log "slurmctld is UP; starting slurmd -N $NODE"
    # slurmctld restores the node as IDLE from its state file; the node only
    # counts as ready once this slurmd has registered (SlurmdStartTime changes).
    PREV_SLURMD_START="$(slurmd_start_time)"
    slurmd -N "$NODE" >>"$LOG_DIR/slurmd.stdout" 2>&1 || die "slurmd failed to start (see $SLURMD_LOG)"
fi

# ---------------------------------------------------------------- wait for idle node
deadline=$(( $(date +%s) + TIMEOUT ))
resumed=0
state=""
while :; do
    state="$(node_state)"
    case "$state" in
        # exact match: "idle*" (not responding), "idle~" (powered off) etc. are not ready
        idle|mixed|allocated|completing)
            [ -z "$PREV_SLURMD_START" ] || [ "$(slurmd_start_time)" != "$PREV_SLURMD_START" ] && break ;;
        down*|drain*|drained*|draining*|fail*)
            if [ "$resumed" = 0 ]; then
                log "node $NODE is '$state' ($(timeout 10 sinfo -h -N -n "$NODE" -o '%E' 2>/dev/null)); trying to resume it"
                timeout 10 scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 \
                    || timeout 10 scontrol update nodename="$NODE" state=idle >/dev/null 2>&1
                resumed=1
            fi ;;
    esac
    pgrep_x slurmd >/dev/null || die "slurmd is not running"
    pgrep_x slurmctld >/dev/null || die "slurmctld is not running"
    [ "$(date +%s)" -ge "$deadline" ] && die "node $NODE not idle after ${TIMEOUT}s (state='${state:-?}')"
    sleep 0.5
done
log "node $NODE is $state"

# ---------------------------------------------------------------- env file for tests
cat >"$ENV_FILE" <<EOF
# Written by .ci/slurm/start_slurm.sh; source it or parse KEY=VALUE lines.
RUNNER_SLURM_AVAILABLE=1
RUNNER_SLURM_CONF=${CONF_DIR}/slurm.conf
RUNNER_SLURM_CLUSTER=${CLUSTER}
RUNNER_SLURM_PARTITION=${PARTITION}
RUNNER_SLURM_NODE=${NODE}
RUNNER_SLURM_CPUS=${CPUS}
RUNNER_SLURM_MEM_MB=${MEM}
RUNNER_SLURM_GPUS_PER_NODE=${FAKE_GPUS}
RUNNER_SLURM_ACCOUNTING=${ACCOUNTING}
EOF

# ---------------------------------------------------------------- smoke test
if [ "${RUNNER_SLURM_SKIP_SMOKE:-0}" != 1 ]; then
    out="$(timeout 60 srun -N1 -n1 -p "$PARTITION" -t 1 hostname 2>&1)" \
        || die "smoke test 'srun -N1 hostname' failed: $out"
    log "srun -N1 hostname -> $out"
    if [ "${FAKE_GPUS}" -gt 0 ] 2>/dev/null; then
        out="$(timeout 60 srun -N1 -n1 -p "$PARTITION" -t 1 --gres=gpu:1 \
               bash -c 'echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-<unset>} SLURM_JOB_GPUS=${SLURM_JOB_GPUS-<unset>}"' 2>&1)" \
            || die "GRES smoke test 'srun --gres=gpu:1' failed: $out"
        log "srun --gres=gpu:1 -> $out"
    fi
fi

log "Slurm cluster '$CLUSTER' ready: node=$NODE cpus=$CPUS mem=${MEM}MB gpus=$FAKE_GPUS partition=$PARTITION (env: $ENV_FILE)"
exit 0
