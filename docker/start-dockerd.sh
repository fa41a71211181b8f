#!/bin/sh
# Start dockerd in the background when no daemon answers (CI sandboxes have no init system).
# overlay2 first; vfs when the kernel or the filesystem refuses overlay mounts.
set -eu
CACHE="${NILECARE_CACHE:-/var/cache/nilecare}"
LOG="$CACHE/dockerd.log"
mkdir -p "$CACHE"

if docker info >/dev/null 2>&1; then
    exit 0
fi

wait_for_daemon() {
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}

for driver in overlay2 vfs; do
    echo "starting dockerd (storage driver $driver), log in $LOG" >&2
    nohup dockerd --storage-driver="$driver" >"$LOG" 2>&1 &
    pid=$!
    if wait_for_daemon; then
        echo "$pid" > "$CACHE/dockerd.pid"
        docker info --format 'dockerd {{.ServerVersion}}, storage {{.Driver}}, cgroup {{.CgroupVersion}}' >&2
        exit 0
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
echo "dockerd did not start; last lines of $LOG:" >&2
tail -20 "$LOG" >&2
exit 1
