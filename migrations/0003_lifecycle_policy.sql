ALTER TABLE `nodes` ADD `cordoned_at` integer;--> statement-breakpoint
ALTER TABLE `pools` ADD `queue_timeout_ms` integer DEFAULT 120000 NOT NULL;--> statement-breakpoint
ALTER TABLE `pools` ADD `run_timeout_ms` integer DEFAULT 600000 NOT NULL;--> statement-breakpoint
ALTER TABLE `pools` ADD `scale_out_wait_ms` integer DEFAULT 10000 NOT NULL;