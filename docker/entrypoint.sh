#!/bin/sh
# Starts redis-server from docker/redis.conf; MONGO_URI and READTHROUGH_MAPPINGS (environment)
# fill in the two settings that differ per deployment. Extra arguments go to redis-server.
# The official image's entrypoint then drops to the redis user and owns /data.
set -e
exec docker-entrypoint.sh redis-server /usr/local/etc/redis/redis.conf \
  --readthrough.mongo-uri "$MONGO_URI" \
  --readthrough.mappings "$READTHROUGH_MAPPINGS" \
  "$@"
