#!/usr/bin/env bash
# What the container tests (tests/test_containers.py) need on a Debian machine: podman with runc, mmdebstrap (the
# tests build their own Debian base image, no registry needed) and a containers.conf that works inside
# a container or VM like the CI machine's. Run by .ci/run before `make test`; safe to re-run; leaves an
# existing /etc/containers/containers.conf alone.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=""
fi

need=()
for tool in podman mmdebstrap runc; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if ((${#need[@]})); then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -o DPkg::Lock::Timeout=600 -y -qq "${need[@]}" >/dev/null
fi

# crun and systemd cgroups, podman's defaults, fail where there is no systemd and the cgroup tree is not
# delegated; unlimited ulimits are refused inside an unprivileged parent container.
conf=/etc/containers/containers.conf
if [ ! -e "$conf" ]; then
    $SUDO mkdir -p /etc/containers
    $SUDO tee "$conf" >/dev/null <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
fi
podman info --format 'podman {{.Version.Version}}, runtime {{.Host.OCIRuntime.Name}}\n'
