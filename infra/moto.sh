#!/usr/bin/env bash
# Installs moto[server] into .venv (if missing) and starts it on a free 127.0.0.1 port.
# Sourced by infra/test.sh and infra/bench.sh: exports AWS_ENDPOINT_URL and dummy credentials,
# sets MOTO_PID, and defines stop_moto.
MOTO_VERSION="5.2.5"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

ensure_moto() {
    if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
        echo "infra: installing moto[server]==$MOTO_VERSION into .venv" >&2
        python3 -m venv "$VENV" || return 1
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" || return 1
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_moto() {
    ensure_moto || { echo "infra: could not install moto" >&2; return 1; }
    local port
    port="$(free_port)"
    MOTO_LOG="${MOTO_LOG:-$(mktemp -t moto.XXXXXX.log)}"
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$MOTO_LOG" 2>&1 &
    MOTO_PID=$!
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    export MOTO_PID
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen('$AWS_ENDPOINT_URL/moto-api/', timeout=1)" 2>/dev/null; then
            echo "infra: moto $MOTO_VERSION on $AWS_ENDPOINT_URL (pid $MOTO_PID)" >&2
            return 0
        fi
        if ! kill -0 "$MOTO_PID" 2>/dev/null; then
            echo "infra: moto exited; its log:" >&2; cat "$MOTO_LOG" >&2; return 1
        fi
        sleep 0.2
    done
    echo "infra: moto did not answer within 20 s" >&2
    return 1
}

stop_moto() {
    if [ -n "${MOTO_PID:-}" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
        kill -CONT "$MOTO_PID" 2>/dev/null || true   # a test may have paused it
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
    fi
    MOTO_PID=""
}
