# Sourced by scripts/install/*.sh: install Debian packages, only those missing.
#
#   source "$(dirname "$0")/../lib/apt.sh"
#   apt_install_missing podman runc ...
#
# One `apt-get update` per call, and none when everything is installed already.

apt_install_missing() {
    local missing=() package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
            missing+=("$package")
        fi
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "$(basename "$0"): installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
