#!/usr/bin/env bash
# The servers the connector tests talk to besides Postgres and Redis: MariaDB (root, empty
# password, over TCP) and NATS with JetStream. Each is used where it already listens;
# otherwise, as root, the Debian package is installed when missing and the server started.
# Sourced by scripts/test.sh. Without them the MySQL and NATS tests fail (they never skip).
mysql_host=${FLOWGATE_TEST_MYSQL_HOST:-127.0.0.1}; mysql_port=${FLOWGATE_TEST_MYSQL_PORT:-3306}
nats_host=${FLOWGATE_TEST_NATS_HOST:-127.0.0.1}; nats_port=${FLOWGATE_TEST_NATS_PORT:-4222}

reachable() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

start_connector_servers() {
  local missing=()
  reachable "$mysql_host" "$mysql_port" || dpkg -s mariadb-server >/dev/null 2>&1 || missing+=(mariadb-server)
  reachable "$nats_host" "$nats_port" || dpkg -s nats-server >/dev/null 2>&1 || missing+=(nats-server)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
      say "the connector tests need these Debian packages: ${missing[*]}"; return 0
    fi
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  [ "$(id -u)" -eq 0 ] || return 0
  if ! reachable "$mysql_host" "$mysql_port" && command -v mysqld_safe >/dev/null; then
    say "starting MariaDB"
    if ! service mariadb start >/dev/null 2>&1; then
      mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
      nohup mysqld_safe --bind-address=127.0.0.1 --port="$mysql_port" >/var/log/flowgate-mariadb.log 2>&1 &
    fi
  fi
  if ! reachable "$nats_host" "$nats_port"; then
    local nats; nats=$(command -v nats-server || echo /usr/sbin/nats-server)
    if [ -x "$nats" ]; then
      say "starting NATS (JetStream)"
      mkdir -p /var/lib/nats-server
      nohup "$nats" -a 127.0.0.1 -p "$nats_port" -js -sd /var/lib/nats-server >/var/log/flowgate-nats.log 2>&1 &
    fi
  fi
  for _ in $(seq 1 30); do
    reachable "$mysql_host" "$mysql_port" && reachable "$nats_host" "$nats_port" && break
    sleep 1
  done
  # A fresh MariaDB lets root in only over its socket: the tests log in over TCP, as root
  # with an empty password (the server listens on loopback only).
  if reachable "$mysql_host" "$mysql_port" && command -v mariadb >/dev/null \
    && ! mariadb -h "$mysql_host" -P "$mysql_port" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    say "letting root log in to MariaDB over TCP"
    mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
      CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;" \
      || say "could not open MariaDB to root over TCP: the MySQL connector tests will fail"
  fi
}
