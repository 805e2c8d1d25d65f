#!/usr/bin/env bash
# Install what the tests and the demo need, on a fresh Debian bookworm machine:
# apt packages for the QEMU hosts, and a venv with the pinned Python tools.
# Source it: it exports PATH (venv first), KEXEC_CACHE and KEXEC_VENV.
# Safe to run again: each step is skipped when already done.

KEXEC_CACHE=${KEXEC_CACHE:-$HOME/.cache/kernel-kexec}
KEXEC_VENV=$KEXEC_CACHE/venv
export KEXEC_CACHE KEXEC_VENV
_kexec_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

kexec_apt_packages=(qemu-system-x86 qemu-utils mmdebstrap fdisk e2fsprogs util-linux openssh-client
                    ca-certificates git rsync)
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

_want=$(sha256sum "$_kexec_repo/requirements-test.txt" | cut -d' ' -f1)
if [[ ! -x $KEXEC_VENV/bin/python || $(cat "$KEXEC_VENV/.requirements" 2>/dev/null) != "$_want" ]]; then
    echo "setup: python venv at $KEXEC_VENV"
    mkdir -p "$KEXEC_CACHE"
    python3 -m venv "$KEXEC_VENV"
    "$KEXEC_VENV/bin/pip" install -q --upgrade pip
    "$KEXEC_VENV/bin/pip" install -q -r "$_kexec_repo/requirements-test.txt"
    echo "$_want" > "$KEXEC_VENV/.requirements"
fi
export PATH=$KEXEC_VENV/bin:$PATH

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
unset _missing _pkg _want _sudo
