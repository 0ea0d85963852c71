-- Rows with money are kept: columns a row may break the spec in become nullable (the finding is
-- recorded on the import). FOCUS 1.2 and 1.3 columns. Each import's findings and reconciliation.
ALTER TABLE line_items
    ALTER COLUMN effective_cost DROP NOT NULL,
    ALTER COLUMN list_cost DROP NOT NULL,
    ALTER COLUMN contracted_cost DROP NOT NULL,
    ALTER COLUMN billing_account_id DROP NOT NULL,
    ALTER COLUMN billing_currency DROP NOT NULL,
    ALTER COLUMN billing_period_start DROP NOT NULL,
    ALTER COLUMN billing_period_end DROP NOT NULL,
    ALTER COLUMN charge_category DROP NOT NULL,
    ALTER COLUMN provider_name DROP NOT NULL,
    ADD COLUMN invoice_id                             text,
    ADD COLUMN billing_account_type                   text,
    ADD COLUMN sub_account_type                       text,
    ADD COLUMN pricing_currency                       text,
    ADD COLUMN pricing_currency_contracted_unit_price numeric,
    ADD COLUMN pricing_currency_effective_cost        numeric,
    ADD COLUMN pricing_currency_list_unit_price       numeric,
    ADD COLUMN service_provider_name                  text,
    ADD COLUMN host_provider_name                     text,
    ADD COLUMN allocated_method_id                    text,
    ADD COLUMN allocated_method_details               text,  -- JSON object text, as in the file
    ADD COLUMN allocated_resource_id                  text,
    ADD COLUMN allocated_resource_name                text,
    ADD COLUMN allocated_tags                         text,  -- JSON object text, as in the file
    ADD COLUMN contract_applied                       text;  -- JSON object text, as in the file

-- Invoices: BilledCost summed per InvoiceId is the invoice's total (FOCUS 1.2).
CREATE INDEX line_items_invoice_idx ON line_items (invoice_id) WHERE invoice_id IS NOT NULL;

ALTER TABLE imports
    ADD COLUMN rows_with_findings bigint NOT NULL DEFAULT 0,
    ADD COLUMN findings           jsonb,  -- per rule: {"count", "examples": [...]}, bounded
    ADD COLUMN reconciliation     jsonb;  -- per currency and basis: file, stored, rejected sums
