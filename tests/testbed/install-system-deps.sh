#!/usr/bin/env bash
# Install the Debian packages the test bed needs; run as root before `make test`.
#
#   iproute2  - `ip netns`, bridges and veth pairs: the test network (tests/testbed/netns.py)
#   socat     - relays joining a host of the test network to the machine's loopback
#   openssl   - certificates for the throw-away kube-apiserver
#   unzip     - what Kubeless's `prepare` init container runs (tests/testbed/kubeless.py)
#
# The peers (etcd, Kubernetes, kwok, Falcosidekick, Knative Eventing, ...) are not apt
# packages here: `python -m tests.testbed.build` builds them with Go (Debian 12's etcd 3.4
# is too old).
# Idempotent, and quick when everything is present. Fails loudly on any error.
set -euo pipefail

packages=(iproute2 socat openssl unzip)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-system-deps: must run as root to install: ${missing[*]}" >&2
        exit 1
    fi
    echo "install-system-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

for command in ip socat openssl unzip; do
    if ! command -v "$command" >/dev/null; then
        echo "install-system-deps: '$command' is still missing after installing ${packages[*]}" >&2
        exit 1
    fi
done

if ! command -v go >/dev/null; then
    echo "install-system-deps: the Go toolchain (1.26+) is not on PATH;" \
        "the peers are built with it (python -m tests.testbed.build)" >&2
    exit 1
fi
echo "install-system-deps: ok ($(go version | cut -d' ' -f3), $(openssl version | cut -d' ' -f1-2))"
