#!/usr/bin/env bash
# Create bpstream's topics on Apache Kafka. Partitions must match BPSTREAM_PARTITIONS on every worker.
set -euo pipefail
BOOTSTRAP=${BOOTSTRAP:-localhost:9092}
PARTITIONS=${PARTITIONS:-32}
REPLICATION=${REPLICATION:-3}
TOPICS="bp.waveforms.v1 bp.commands.v1 bp.estimates.v1 bp.events.v1 bp.deadletter.v1"
# the optional FHIR output topic (BPSTREAM_FHIR_OUTPUT=true on the workers)
if [ "${FHIR_OUTPUT:-false}" = "true" ]; then TOPICS="$TOPICS bp.estimates.fhir.v1"; fi
for t in $TOPICS; do
  kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$t" \
    --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
    --config retention.ms=$((7 * 24 * 3600 * 1000)) \
    --config max.message.bytes=2097152  # 2 x BPSTREAM_MAX_CHUNK_BYTES: an oversized chunk is dead-lettered, not refused
done
