-- Utilisation history arrives in batches (resource.utilization_recorded), with network counters;
-- a discovered resource's creation time at its provider is not the time it entered the inventory.
ALTER TABLE utilization_samples ADD COLUMN network_bytes bigint;
ALTER TABLE inventory ADD COLUMN provisioned_at timestamptz;
