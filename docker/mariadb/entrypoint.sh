#!/bin/sh
# Starts mariadbd (PID 1, so a SIGKILL of the container is a crash of the database) in the foreground on EOB_DB_PORT (host network: 127.0.0.1 only), with the same durable
# settings as the project's private database: every commit flushed, binary log off, 256 MB buffer pool.
# Each start runs the init file, which is idempotent: the user and database of EOB_DB_USER / EOB_DB_PASSWORD /
# EOB_DB_NAME exist afterwards (ALL on *.*: the harness reads INFORMATION_SCHEMA.INNODB_TRX and kills
# sessions, which need PROCESS and CONNECTION ADMIN). Extra arguments go to mariadbd.
set -eu
port=${EOB_DB_PORT:-13306}
user=${EOB_DB_USER:-eob}
password=${EOB_DB_PASSWORD:-eob}
database=${EOB_DB_NAME:-eob}
cat > /run/mysqld/init.sql <<SQL
CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS '$user'@'::1' IDENTIFIED BY '$password';
GRANT ALL ON *.* TO '$user'@'127.0.0.1';
GRANT ALL ON *.* TO '$user'@'::1';
CREATE DATABASE IF NOT EXISTS \`$database\`;
SQL
chown mysql:mysql /run/mysqld/init.sql
# --no-defaults first: Debian's /etc/mysql files are not read, so the settings are these alone, as for the
# private database.
exec mariadbd --no-defaults --user=mysql --datadir=/var/lib/mysql --bind-address=127.0.0.1 --port="$port" \
  --socket=/run/mysqld/mysqld.sock --skip-name-resolve --init-file=/run/mysqld/init.sql \
  --innodb-flush-log-at-trx-commit=1 --sync-binlog=1 --skip-log-bin --innodb-buffer-pool-size=256M \
  --max-connections=500 "$@"
