#!/usr/bin/env bash
# Create bpstream's topics on Apache Kafka. Partitions must match BPSTREAM_PARTITIONS on every worker.
set -euo pipefail
BOOTSTRAP=${BOOTSTRAP:-localhost:9092}
PARTITIONS=${PARTITIONS:-32}
REPLICATION=${REPLICATION:-3}
for t in bp.waveforms.v1 bp.commands.v1 bp.estimates.v1 bp.events.v1 bp.deadletter.v1; do
  kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$t" \
    --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
    --config retention.ms=$((7 * 24 * 3600 * 1000))
done
