#!/bin/sh
# berth watch in a container, without a Dockerfile: a stock Debian image,
# the berth binary bind-mounted read-only, the configuration directory
# mounted read-write (state, inventories), the host's CA certificates for
# AWS and the webhooks. Works with podman or docker.
#
#   BERTH=/usr/local/bin/berth INFRA=/srv/infra ENV_FILE=/etc/berth/watch.env ./container.sh
#
# The hook runs inside the container: if it calls `kamal`, use an image that
# has Ruby and Kamal (for instance `docker.io/library/ruby:3.4-slim` with a
# GEM_HOME volume where `gem install kamal` was run once), and mount the SSH
# key and known_hosts the hook needs (below: ~/.ssh of the invoking user).
set -eu

RUNTIME=${RUNTIME:-$(command -v podman || command -v docker)}
BERTH=${BERTH:-/usr/local/bin/berth}
INFRA=${INFRA:-$PWD}
ENV_FILE=${ENV_FILE:-/etc/berth/watch.env}
IMAGE=${IMAGE:-docker.io/library/debian:bookworm-slim}

# `listen = "0.0.0.0:9469"` in the watch block inside the container; the host
# publishes it on loopback only.
exec "$RUNTIME" run --name berth-watch --rm --init \
  --read-only --tmpfs /tmp \
  --cap-drop ALL --security-opt no-new-privileges \
  --user "$(id -u):$(id -g)" \
  --env-file "$ENV_FILE" \
  --env HOME=/home/berth --env BERTH_LOG=info \
  --volume "$BERTH:/usr/local/bin/berth:ro" \
  --volume /etc/ssl/certs:/etc/ssl/certs:ro \
  --volume "$INFRA:/srv/infra" \
  --volume "$HOME/.ssh:/home/berth/.ssh" \
  --workdir /srv/infra \
  --publish 127.0.0.1:9469:9469 \
  --stop-timeout 900 \
  "$IMAGE" /usr/local/bin/berth watch
