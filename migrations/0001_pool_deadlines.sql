ALTER TABLE `pools` ADD `first_token_timeout_ms` integer DEFAULT 60000 NOT NULL;--> statement-breakpoint
ALTER TABLE `pools` ADD `idle_timeout_ms` integer DEFAULT 30000 NOT NULL;