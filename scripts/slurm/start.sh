#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for testing array jobs end to end: Debian's
# slurm-wlm (slurmctld + slurmd) with munge authentication, configured for this host's CPUs and
# memory, without systemd. Idempotent: an already running cluster is left as it is.
#
#   scripts/slurm/start.sh          # installs (apt) and starts; prints the partition
#   scripts/slurm/start.sh --stop   # stops the daemons
#
# Needs root (or sudo) for apt and for the daemons. State lives under /var/lib/prottrans-slurm.
set -euo pipefail

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
STATE=/var/lib/prottrans-slurm
CONF=/etc/slurm/slurm.conf

if [ "${1:-}" = "--stop" ]; then
    $SUDO pkill -x slurmd || true
    $SUDO pkill -x slurmctld || true
    $SUDO pkill -x munged || true
    exit 0
fi

if ! command -v slurmctld > /dev/null || ! command -v munged > /dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq slurm-wlm munge > /dev/null
fi

# munge: one key shared by every daemon and client of the cluster (here, one machine).
if [ ! -s /etc/munge/munge.key ]; then
    $SUDO mkdir -p /etc/munge
    $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
$SUDO chown munge:munge /etc/munge/munge.key 2> /dev/null || true
$SUDO chmod 400 /etc/munge/munge.key
$SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
$SUDO chown munge:munge /run/munge /var/log/munge /var/lib/munge 2> /dev/null || true
if ! pgrep -x munged > /dev/null; then
    if id munge > /dev/null 2>&1; then
        $SUDO -u munge munged 2> /dev/null || $SUDO runuser -u munge -- munged
    else
        $SUDO munged --force
    fi
fi
munge -n | unmunge > /dev/null

host="$(hostname -s)"
cpus="$(nproc)"
# What slurmd will find (it refuses a node configured with more memory than it has), less a
# margin for the daemons.
memory_mib=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
$SUDO mkdir -p "$STATE/ctld" "$STATE/d" /etc/slurm
$SUDO tee "$CONF" > /dev/null <<CONF
# Written by prottrans scripts/slurm/start.sh: one node, the whole machine.
ClusterName=prottrans
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
NodeName=$host CPUs=$cpus RealMemory=$memory_mib State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
# No cgroup.conf: slurmd then finds what the machine offers (this Slurm, 22.05, has no
# `CgroupPlugin=disabled`; proctrack/linuxproc and task/none need no cgroups).

if ! pgrep -x slurmctld > /dev/null; then
    $SUDO slurmctld -i
fi
if ! pgrep -x slurmd > /dev/null; then
    $SUDO slurmd
fi
# Ready when the node takes jobs.
for _ in $(seq 1 60); do
    state="$(sinfo -h -N -o '%T' 2> /dev/null | head -1)"
    case "$state" in
        idle*|mixed*|allocated*) break ;;
    esac
    sleep 1
done
state="$(sinfo -h -N -o '%T' 2> /dev/null | head -1)"
case "$state" in
    idle*|mixed*|allocated*) ;;
    *)
        echo "slurm: the node is '$state', not idle; see $STATE/slurmctld.log and $STATE/slurmd.log" >&2
        $SUDO tail -20 "$STATE/slurmd.log" >&2 || true
        exit 1
        ;;
esac
sinfo
