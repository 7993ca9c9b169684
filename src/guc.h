/*
 * guc.h - sentry_relay's server settings (sentry_relay.*).
 */
#ifndef SR_GUC_H
#define SR_GUC_H

extern int	sr_max_message_size;
extern char *sr_database;
extern char *sr_worker_role;
extern char *sr_bootstrap_servers;
extern char *sr_kafka_properties;
extern int	sr_batch_size;
extern int	sr_batch_max_bytes;
extern int	sr_batch_timeout;
extern bool sr_synchronous_commit;
extern bool sr_fetch_wakeup;
extern int	sr_max_workers;
extern int	sr_queue_buffer_kb;
extern int	sr_max_attempts;

extern void sr_guc_init(bool preloaded);

/* The worker role (sentry_relay.worker_role), checked in the catalog. */
typedef enum sr_role_problem
{
	SR_ROLE_OK,
	SR_ROLE_MISSING,
	SR_ROLE_SUPERUSER,
	SR_ROLE_NOLOGIN
} sr_role_problem;

extern const char *sr_worker_role_name(void);
extern sr_role_problem sr_worker_role_check(Oid *roleid);
extern void sr_worker_role_report(sr_role_problem problem, int elevel);
extern void sr_worker_connect(void);

#endif							/* SR_GUC_H */
