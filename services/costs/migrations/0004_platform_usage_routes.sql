-- The platform's usage comes from every service now, charged per principal and route, with the
-- wall time measured and the CPU shared out per interval (common.costtracker).
ALTER TABLE platform_usage
    ADD COLUMN service      text    NOT NULL DEFAULT 'costs',
    ADD COLUMN route        text    NOT NULL DEFAULT '',
    ADD COLUMN wall_seconds numeric NOT NULL DEFAULT 0;
ALTER TABLE platform_usage DROP CONSTRAINT platform_usage_pkey;
ALTER TABLE platform_usage ADD PRIMARY KEY (day, principal, service, route);
