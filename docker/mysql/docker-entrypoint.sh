#!/bin/bash
# The official mysql image's contract on MariaDB: MYSQL_ROOT_PASSWORD(_FILE),
# MYSQL_ALLOW_EMPTY_PASSWORD, MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD(_FILE) and
# /docker-entrypoint-initdb.d, applied once, on the first start, into the data volume.
set -euo pipefail

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/init.sock

log() { echo "[entrypoint] $*" >&2; }

# VAR or VAR_FILE (but not both), like the official image.
file_env() {
    local var="$1" file_var="${1}_FILE" default="${2:-}"
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        log "both $var and $file_var are set; use one"
        exit 1
    fi
    local value="$default"
    if [ -n "${!var:-}" ]; then
        value="${!var}"
    elif [ -n "${!file_var:-}" ]; then
        value="$(< "${!file_var}")"
    fi
    export "$var"="$value"
    unset "$file_var"
}

sql_string() { printf "'%s'" "$(printf '%s' "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/''/g")"; }

initialise() {
    file_env MYSQL_ROOT_PASSWORD
    file_env MYSQL_PASSWORD
    if [ -z "$MYSQL_ROOT_PASSWORD" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ]; then
        log "database is uninitialised and MYSQL_ROOT_PASSWORD is not set"
        exit 1
    fi
    log "initialising $DATADIR"
    mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db \
        --auth-root-authentication-method=normal >/dev/null
    mysqld --user=mysql --datadir="$DATADIR" --skip-networking --socket="$SOCKET" "$@" &
    local pid=$!
    for _ in $(seq 60); do
        mariadb-admin --socket="$SOCKET" -uroot ping >/dev/null 2>&1 && break
        sleep 1
    done
    {
        echo "SET @@SESSION.SQL_LOG_BIN=0;"
        echo "DELETE FROM mysql.user WHERE User='';"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$MYSQL_ROOT_PASSWORD");"
        echo "CREATE USER 'root'@'%' IDENTIFIED BY $(sql_string "$MYSQL_ROOT_PASSWORD");"
        echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
        if [ -n "${MYSQL_DATABASE:-}" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"
        fi
        if [ -n "${MYSQL_USER:-}" ] && [ -n "$MYSQL_PASSWORD" ]; then
            echo "CREATE USER '$MYSQL_USER'@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
            if [ -n "${MYSQL_DATABASE:-}" ]; then
                echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'%';"
            fi
        fi
        echo "FLUSH PRIVILEGES;"
    } | mariadb --socket="$SOCKET" -uroot
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sql) log "running $f"; MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mariadb --socket="$SOCKET" -uroot "${MYSQL_DATABASE:-}" < "$f" ;;
            *.sh) log "running $f"; . "$f" ;;
        esac
    done
    MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mariadb-admin --socket="$SOCKET" -uroot shutdown
    wait "$pid" || true
    unset MYSQL_ROOT_PASSWORD MYSQL_PASSWORD
    log "initialised"
}

if [ "${1:0:1}" = "-" ]; then
    set -- mysqld "$@"
fi

if [ "$1" = "mysqld" ] || [ "$1" = "mariadbd" ]; then
    shift
    if [ "$(id -u)" = "0" ]; then
        chown mysql:mysql "$DATADIR" /run/mysqld
    fi
    if [ ! -d "$DATADIR/mysql" ]; then
        initialise "$@"
    fi
    # mysqld drops from root to the mysql user itself.
    exec mysqld --user=mysql --datadir="$DATADIR" "$@"
fi
exec "$@"
