#!/usr/bin/env bash
# Writes the random secrets compose.yaml reads, under ./secrets/ (never overwrites one that
# exists: the encryption key in particular must outlive every deployment; back it up).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p secrets && chmod 700 secrets
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(36))'; }
write() { [ -s "secrets/$1" ] || { printf '%s\n' "$2" > "secrets/$1"; chmod 600 "secrets/$1"; }; }
write postgres_password "$(random)"
password=$(cat secrets/postgres_password)
write database_url "postgres://flowgate:$password@postgres:5432/flowgate"
write mlflow_database_url "postgresql+psycopg://flowgate:$password@postgres:5432/mlflow"
write secret_key "$(random)"
write encryption_key "$(random)"
write metrics_token "$(random)"
write s3_access_key "mlflow"
write s3_secret_key "$(random)"
write s3_config.json "$(python3 - "$(cat secrets/s3_access_key)" "$(cat secrets/s3_secret_key)" <<'PY'
import json, sys
print(json.dumps({"identities": [{"name": "mlflow", "credentials": [
    {"accessKey": sys.argv[1], "secretKey": sys.argv[2]}],
    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
PY
)"
echo "secrets in $(pwd)/secrets"
