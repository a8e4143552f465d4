# Sourced by scripts/test and scripts/demo: set up a virtual environment once, reuse it after.
#
# install_once NAME PIP_ARGS...  creates $VENV (default .venv) if needed and installs PIP_ARGS
# there, pinned by constraints.txt. The install is skipped when the same NAME was already
# installed from the same constraints and package metadata (a stamp file in $VENV records a
# hash of them), so a second run starts at once.
#
# ITSM_CHANGE_UNPINNED=1 installs the newest releases the packages' own version ranges allow,
# into .venv-latest, to find upstream drift on purpose.

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "itsm-change-sdk needs Python 3.11 or newer as python3 (found: $(python3 --version 2>&1))." >&2
    exit 2
fi

if [ "${ITSM_CHANGE_UNPINNED:-}" = 1 ]; then
    VENV=${VENV:-.venv-latest}
    PIN_ARGS=(--upgrade --upgrade-strategy eager)
else
    VENV=${VENV:-.venv}
    PIN_ARGS=(--constraint constraints.txt)
fi

install_once() {
    local name=$1
    shift
    local digest
    digest=$(cat constraints.txt pyproject.toml plugins/*/pyproject.toml examples/*/pyproject.toml \
        2>/dev/null | { echo "$* ${PIN_ARGS[*]}"; cat; } | sha256sum | cut -c1-32)
    local stamp="$VENV/.installed-$name"
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then
        return 0
    fi
    echo "Setting up $VENV ($name)..." >&2
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade "${PIN_ARGS[@]}" pip
    "$VENV/bin/python" -m pip install --quiet "${PIN_ARGS[@]}" "$@"
    echo "$digest" > "$stamp"
}
