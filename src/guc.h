/*
 * guc.h - sentry_relay's server settings (sentry_relay.*).
 */
#ifndef SR_GUC_H
#define SR_GUC_H

extern int	sr_max_message_size;
extern char *sr_database;
extern char *sr_bootstrap_servers;
extern char *sr_kafka_properties;
extern int	sr_batch_size;
extern int	sr_batch_max_bytes;
extern int	sr_batch_timeout;
extern int	sr_max_workers;
extern int	sr_queue_buffer_kb;
extern int	sr_max_attempts;

extern void sr_guc_init(void);

#endif							/* SR_GUC_H */
