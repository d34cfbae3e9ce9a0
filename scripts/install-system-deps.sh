#!/usr/bin/env bash
# Installs the Debian packages mintplane's dev stack runs on (PostgreSQL, Redis, RabbitMQ) without
# letting the packages start their own system services: the dev stack starts its own instances on
# loopback with state under .dev/. Idempotent: does nothing when everything is present.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v rabbitmq-server >/dev/null || [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || need+=(rabbitmq-server)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v wrk >/dev/null || need+=(wrk)  # HTTP load generator of bench/gateway/run.py
[[ ${#need[@]} -eq 0 ]] && exit 0
echo "installing Debian packages: ${need[*]}" >&2
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
# Packages that started anyway (no policy-rc.d honoured) are stopped so they don't hold our ports; only
# when a server package was just installed (a running dev stack's redis must survive e.g. installing wrk).
servers=0
for pkg in "${need[@]}"; do
  case $pkg in redis-server|rabbitmq-server|postgresql) servers=1 ;; esac
done
[[ $servers -eq 1 ]] || exit 0
for svc in redis-server rabbitmq-server postgresql; do
  service "$svc" stop >/dev/null 2>&1 || true
done
pkill -f '/usr/bin/redis-server' 2>/dev/null || true
