/*
 * relay.h - the relay's background worker entry points: the launcher
 * (launcher.c) and the workers it starts (worker.c; their state and modules
 * are in worker.h).
 */
#ifndef SR_RELAY_H
#define SR_RELAY_H

#include "postgres.h"

extern PGDLLEXPORT void sr_launcher_main(Datum main_arg);
extern PGDLLEXPORT void sr_worker_main(Datum main_arg);

#endif							/* SR_RELAY_H */
