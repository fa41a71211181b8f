#!/bin/sh
# The official redis image's entrypoint: flags alone mean redis-server, and a root start drops
# to the redis user after taking ownership of /data.
set -eu
case "${1:-}" in
    -*|*.conf) set -- redis-server "$@" ;;
esac
if [ "${1:-}" = "redis-server" ] && [ "$(id -u)" = "0" ]; then
    find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
