#!/bin/sh
# jupyter-valohai worker bootstrap: installs agent @VERSION@ from the master into a venv and starts
# it for worker group @GROUP@. Served by GET /api/agent/bootstrap.sh?group=<slug>.
#
# Needs python3 (with venv) and, in the environment, VH_AGENT_TOKEN: the group's worker token.
# Optional: VH_AGENT_HOME (default /opt/jupyter-valohai), VH_PYTHON, VH_PIP_ARGS (e.g.
# --find-links), VH_AGENT_ARGS (extra agent arguments), VH_AGENT_INSTANCE_ID (else the EC2
# instance id when there is one).
set -eu
MASTER_URL=${VH_MASTER_URL:-@MASTER_URL@}
VERSION=@VERSION@
WHEEL=@WHEEL@
SHA256=@SHA256@
HOME_DIR=${VH_AGENT_HOME:-/opt/jupyter-valohai}
PYTHON=${VH_PYTHON:-python3}
if [ -z "${VH_AGENT_TOKEN:-}" ]; then
    echo "bootstrap: set VH_AGENT_TOKEN to the worker group's token" >&2
    exit 2
fi
export VH_AGENT_TOKEN
mkdir -p "$HOME_DIR/releases/$VERSION" "$HOME_DIR/work"
if [ ! -x "$HOME_DIR/venv/bin/python" ]; then
    "$PYTHON" -m venv "$HOME_DIR/venv"
fi
VPY="$HOME_DIR/venv/bin/python"
"$VPY" - "$MASTER_URL/api/agent/releases/$VERSION/$WHEEL" "$HOME_DIR/releases/$VERSION/$WHEEL" \
    "$SHA256" <<'PY'
import hashlib, os, sys, urllib.request
url, dest, want = sys.argv[1:4]
req = urllib.request.Request(url, headers={"Authorization": "Token " + os.environ["VH_AGENT_TOKEN"]})
digest = hashlib.sha256()
with urllib.request.urlopen(req, timeout=300) as resp, open(dest + ".part", "wb") as out:
    for chunk in iter(lambda: resp.read(1 << 20), b""):
        digest.update(chunk)
        out.write(chunk)
if digest.hexdigest() != want:
    sys.exit(f"bootstrap: {url} does not have the SHA-256 the master announced")
os.replace(dest + ".part", dest)
PY
# shellcheck disable=SC2086  # VH_PIP_ARGS is a list of arguments
"$VPY" -m pip install --disable-pip-version-check -q ${VH_PIP_ARGS:-} \
    "$HOME_DIR/releases/$VERSION/$WHEEL"
if [ -z "${VH_AGENT_INSTANCE_ID:-}" ]; then
    # On EC2 the worker is named after its instance (IMDSv2), so the scaler can match them.
    VH_AGENT_INSTANCE_ID=$("$VPY" - <<'PY' || true
import urllib.request
base = "http://169.254.169.254/latest/"
try:
    token = urllib.request.urlopen(urllib.request.Request(
        base + "api/token", method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}), timeout=1).read().decode()
    print(urllib.request.urlopen(urllib.request.Request(
        base + "meta-data/instance-id",
        headers={"X-aws-ec2-metadata-token": token}), timeout=1).read().decode())
except Exception:
    pass
PY
)
fi
export VH_AGENT_INSTANCE_ID
# shellcheck disable=SC2086
exec "$HOME_DIR/venv/bin/jupyter-valohai" agent --master-url "$MASTER_URL" \
    --work-dir "$HOME_DIR/work" --AgentApp.self_upgrade=True ${VH_AGENT_ARGS:-}
