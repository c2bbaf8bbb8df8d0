-- keyseal ledger, schema 3: the device-bound key an activation returned
-- (activations.device_key_id is the signing key that signed it).
ALTER TABLE activations ADD COLUMN device_key TEXT;
