#!/bin/sh
# Starts redis-server from docker/redis.conf; READTHROUGH_MAPPINGS and MONGO_URI (environment)
# fill in the two settings that differ per deployment, or MONGO_URI_FILE names a mounted secret
# holding the URI instead of MONGO_URI. Extra arguments go to redis-server.
# The official image's entrypoint then drops to the redis user and owns /data.
set -e
if [ -n "${MONGO_URI_FILE:-}" ]; then
  set -- --readthrough.mongo-uri-file "$MONGO_URI_FILE" "$@"
else
  set -- --readthrough.mongo-uri "$MONGO_URI" "$@"
fi
exec docker-entrypoint.sh redis-server /usr/local/etc/redis/redis.conf \
  --readthrough.mappings "$READTHROUGH_MAPPINGS" \
  "$@"
