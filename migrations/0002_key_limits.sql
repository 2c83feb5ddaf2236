ALTER TABLE `api_keys` ADD `limits` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE `pools` ADD `batch_aging_ms` integer;--> statement-breakpoint
ALTER TABLE `pools` ADD `key_limits` text DEFAULT '{}' NOT NULL;