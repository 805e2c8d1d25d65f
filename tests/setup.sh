#!/usr/bin/env bash
# Install what the tests and the demo need, on a fresh Debian bookworm machine, as root:
# apt packages for the QEMU hosts (and shellcheck for ansible-test sanity), and a venv with the
# pinned Python tools on the newest ansible-core the collection claims, which needs Python 3.12: that
# comes from the machine (PATH or pyenv: tests/cores.sh), as Debian 12 has 3.11. Source it: it checks
# that Python first (one line and status 1 without it, before anything is installed), exports PATH
# (venv first), KEXEC_CACHE and KEXEC_VENV, and defines kexec_core_venv for the other ansible-core
# versions the tests run.
# Safe to run again: each step is skipped when already done.

KEXEC_CACHE=${KEXEC_CACHE:-$HOME/.cache/kernel-kexec}
KEXEC_VENV=$KEXEC_CACHE/venv
export KEXEC_CACHE KEXEC_VENV
_kexec_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

source "$_kexec_repo/tests/cores.sh"   # kexec_cores, kexec_main_core, kexec_core_python, kexec_python
if ! _kexec_pythons=$(kexec_check_core_pythons "$kexec_main_core" 2>&1); then
    echo "setup: $_kexec_pythons" >&2
    unset _kexec_pythons
    return 1
fi

# python3 and python3-venv for ansible-core 2.19's venv (a plain Debian 12 has python3 without its venv module),
# binutils for the unit test that disassembles the legacy entry stub (objdump; skipped without it).
kexec_apt_packages=(qemu-system-x86 qemu-utils ovmf mmdebstrap fdisk e2fsprogs dosfstools mtools sbsigntool openssl util-linux openssh-client
                    ca-certificates git rsync shellcheck python3 python3-venv binutils)
_missing=()
for _pkg in "${kexec_apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$_pkg" 2>/dev/null | grep -q "install ok installed" || _missing+=("$_pkg")
done
if (( ${#_missing[@]} )); then
    echo "setup: apt-get install ${_missing[*]}"
    if [[ $(id -u) == 0 ]]; then _sudo=(); else _sudo=(sudo); fi
    "${_sudo[@]}" apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive "${_sudo[@]}" apt-get install -y -q --no-install-recommends "${_missing[@]}" >/dev/null
fi

# Create the venv DIR with the interpreter PYTHON and install the requirements file REQS into it; made
# again from nothing (--clear) only when REQS or PYTHON changes (REQS's sha256 and PYTHON are kept in
# DIR/.requirements): venv over an older venv keeps its interpreter links and packages.
_kexec_venv() {
    local dir=$1 reqs=$2 python=$3 want
    want="$(sha256sum "$reqs" | cut -d' ' -f1) $python"
    [[ -x $dir/bin/python && $(cat "$dir/.requirements" 2>/dev/null) == "$want" ]] && return 0
    echo "setup: python venv at $dir" >&2
    mkdir -p "$(dirname "$dir")" &&
        "$python" -m venv --clear "$dir" &&
        "$dir/bin/pip" install -q --upgrade pip &&
        "$dir/bin/pip" install -q -r "$reqs" &&
        echo "$want" > "$dir/.requirements"
}

_kexec_venv "$KEXEC_VENV" "$_kexec_repo/requirements-test.txt" "$(kexec_python "${kexec_core_python[$kexec_main_core]}")"
export PATH=$KEXEC_VENV/bin:$PATH

# Print the venv that runs ansible-core CORE (one of kexec_cores), creating it when needed.
kexec_core_venv() {
    local core=$1 python
    if [[ $core == "$kexec_main_core" ]]; then
        echo "$KEXEC_VENV"
        return 0
    fi
    [[ -n ${kexec_core_python[$core]:-} ]] || { echo "setup: ansible-core $core is not tested" >&2; return 1; }
    python=$(kexec_python "${kexec_core_python[$core]}") &&
        _kexec_venv "$KEXEC_CACHE/venv-core-$core" "$_kexec_repo/tests/requirements-core-$core.txt" "$python" &&
        echo "$KEXEC_CACHE/venv-core-$core"
}

# Copy the collection (the files git knows, tracked and new) to DIR/ansible_collections/kernel/kexec.
kexec_stage_tree() {
    local dest=$1/ansible_collections/kernel/kexec
    if [[ ! -d $dest ]]; then
        mkdir -p "$dest"
        (cd "$_kexec_repo" && git ls-files -z --cached --others --exclude-standard) |
            rsync -a --from0 --files-from=- "$_kexec_repo/" "$dest/"
    fi
    echo "$dest"
}

# Build the collection tarball from a staged tree and install it under DIR/collections.
kexec_install_collection() {
    local dir=$1 version
    version=$(sed -n 's/^version: *//p' "$_kexec_repo/galaxy.yml")
    ansible-galaxy collection build --force --output-path "$dir" "$(kexec_stage_tree "$dir/src")" >/dev/null
    ansible-galaxy collection install --force -p "$dir/collections" "$dir/kernel-kexec-$version.tar.gz" \
        2>&1 >/dev/null | grep -v "is not part of the configured Ansible collections paths" >&2 || true
    export ANSIBLE_COLLECTIONS_PATH=$dir/collections
}
unset _kexec_pythons _missing _pkg _sudo
