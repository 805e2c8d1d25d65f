#!/usr/bin/env bash
# The ansible-core versions the tests run and the controller Python each needs, and where that Python
# is found; sourced by tests/setup.sh, and by tests/run first, to check before any set-up or stage.

# Oldest first. The newest is the main venv's (requirements-test.txt: molecule, ansible-lint, the build,
# docs and import tools, the demo), so that the scenarios prove the newest core the collection claims;
# each other one has a venv of its own under $KEXEC_CACHE, pinned by tests/requirements-core-VERSION.txt.
kexec_cores=(2.19 2.20 2.21)
kexec_main_core=${kexec_cores[-1]}
declare -gA kexec_core_python=([2.19]=3.11 [2.20]=3.12 [2.21]=3.12)
# Debian 12's python3, which tests/setup.sh installs: present once the set-up has run.
kexec_apt_python=3.11

# Print the path of an interpreter for Python VERSION: on PATH, else from pyenv. The interpreter's own
# path, not a pyenv shim's: a shim needs PYENV_ROOT or the user's HOME, which ansible-test does not pass on.
kexec_python() {
    local version=$1 candidate
    for candidate in "python$version" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/"python$version"; do
        if "$candidate" -c 'import sys; print(sys.executable)' 2>/dev/null; then
            return 0
        fi
    done
    echo "setup: Python $version not found (on PATH or under pyenv); install it, e.g. pyenv install $version" >&2
    return 1
}

# Return 1, with one line saying what is missing and what to do, when a controller Python that the
# main venv's ansible-core, or one of the ansible-core versions CORE..., needs is not on this machine.
kexec_check_core_pythons() {
    local core version missing=() versions=() found=()
    for core in "$@"; do
        [[ -n ${kexec_core_python[$core]:-} ]] ||
            { echo "ansible-core $core is not tested here (KEXEC_CORES: ${kexec_cores[*]})" >&2; return 1; }
    done
    for core in "${kexec_cores[@]}"; do
        [[ $core == "$kexec_main_core" || " $* " == *" $core "* ]] || continue
        version=${kexec_core_python[$core]}
        if [[ $version == "$kexec_apt_python" ]] || kexec_python "$version" > /dev/null 2>&1; then
            found+=("$core")
        else
            missing+=("$core")
            [[ " ${versions[*]} " == *" $version "* ]] || versions+=("$version")
        fi
    done
    (( ${#missing[@]} == 0 )) && return 0
    local need=need main='' fix="install it (e.g. pyenv install ${versions[0]})"
    (( ${#missing[@]} > 1 )) || need=needs
    if [[ " ${missing[*]} " == *" $kexec_main_core "* ]]; then
        main=" ($kexec_main_core runs molecule, ansible-lint, the build, docs and import stages and the demo)"
    else
        fix+=", or leave those out (KEXEC_CORES=\"${found[*]}\")"
    fi
    echo "ansible-core ${missing[*]} $need Python ${versions[*]}, on PATH or under pyenv, and this machine has none$main: $fix" >&2
    return 1
}
