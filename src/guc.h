/*
 * guc.h - sentry_relay's server settings (sentry_relay.*).
 */
#ifndef SR_GUC_H
#define SR_GUC_H

extern int	sr_max_message_size;

extern void sr_guc_init(void);

#endif							/* SR_GUC_H */
