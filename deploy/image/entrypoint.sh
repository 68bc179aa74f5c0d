#!/bin/sh
# The image's entry point: `flowgate NAME [ARGS...]`.
#   web | worker | beat | streams | models | mlflow | migrate
#                   the process, as studio/processes.py defines it (python -m studio.processes)
#   worker-alive    the worker's liveness probe (python -m studio.worker_health)
#   http-ok URL     a readiness/liveness probe: exit 0 when URL answers 2xx (sent as the
#                   proxy would: Host localhost, X-Forwarded-Proto https)
#   manage ARGS     manage.py ARGS (createsuperuser, connections rotate-keys, ...)
#   anything else   run as given
set -eu
[ $# -gt 0 ] || set -- web
case "$1" in
  web|worker|control|beat|streams|models|mlflow|migrate)
    exec python -m studio.processes "$@" ;;
  worker-alive)
    shift; exec python -m studio.worker_health "$@" ;;
  http-ok)
    shift
    exec python -c 'import sys, urllib.request as r
r.urlopen(r.Request(sys.argv[1], headers={"Host": "localhost", "X-Forwarded-Proto": "https"}), timeout=5)' "$@" ;;
  manage)
    shift; exec python /app/manage.py "$@" ;;
  *)
    exec "$@" ;;
esac
