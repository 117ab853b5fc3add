# Shared helpers for scripts/up and scripts/test. Source it; do not run it.
# Adding a system package is one line in the caller: APT_PACKAGES+=(name) or `need_apt cmd pkg`.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VH_VENV:-$REPO/.venv}"
PYTHON="${PYTHON:-python3}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

_apt_updated=0
# apt_install PKG... : install Debian packages that are not installed yet (apt-get update once only).
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing system packages: ${missing[*]} (and no apt-get here)"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "missing system packages: ${missing[*]}; run as root or install them"
        sudo="sudo"
    fi
    say "apt-get install ${missing[*]}"
    if [ "$_apt_updated" -eq 0 ]; then
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _apt_updated=1
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# need_cmd CMD PKG : make sure CMD is on PATH, installing Debian package PKG when it is not.
need_cmd() {
    command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

# ensure_venv EXTRAS : a venv at $VENV with the project installed editable with [EXTRAS].
# Reinstalls only when pyproject.toml or the extras change (stamp file in the venv).
ensure_venv() {
    local extras="$1"
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.10+"
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        local ver
        ver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        apt_install "python${ver}-venv" || apt_install python3-venv
    fi
    local stamp="$VENV/.jupyter-valohai-stamp" key line extra ok
    key="$(sha256sum <"$REPO/pyproject.toml" | cut -d' ' -f1) $("$PYTHON" -V 2>&1 | tr ' ' -)"
    # A stamp line is "<pyproject hash> <python version> <extra> <extra>...": the venv is current
    # when one line has this hash and Python and at least the extras asked for.
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ]; then
        while read -r line; do
            [ "${line#"$key "}" != "$line" ] || continue
            ok=1
            for extra in ${extras//,/ }; do
                [[ " ${line#"$key"} " == *" $extra "* ]] || ok=0
            done
            [ "$ok" -eq 1 ] && return 0
        done <"$stamp"
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    say "pip install -e '.[$extras]' (first run takes a minute or two)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$REPO[$extras]"
    # Append: a venv installed with [test,lab] also satisfies [lab].
    printf '%s %s\n' "$key" "${extras//,/ }" >>"$stamp"
}

# npm_deps : labextension/node_modules as package-lock.json says (npm ci only when the lock changed).
npm_deps() {
    need_cmd npm npm
    local stamp="$REPO/labextension/node_modules/.jupyter-valohai-stamp" key
    key="$(sha256sum <"$REPO/labextension/package-lock.json" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$key" ]; then
        say "npm ci (labextension)"
        (cd "$REPO/labextension" && npm ci --no-audit --no-fund --loglevel=error)
        printf '%s\n' "$key" >"$stamp"
    fi
}

# web_bundle : master/web/frontend's modules (npm ci from its lock, only when the lock changed)
# and the web pages' bundle (esbuild, well under a second) in master/web/static/build.
web_bundle() {
    need_cmd npm npm
    local dir="$REPO/master/web/frontend" stamp key
    stamp="$dir/node_modules/.jupyter-valohai-stamp"
    key="$(sha256sum <"$dir/package-lock.json" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$key" ]; then
        say "npm ci (master/web/frontend)"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        printf '%s\n' "$key" >"$stamp"
    fi
    (cd "$dir" && npm run -s build)
}
