/*
 * fetch_waker.h - the relay worker's thread that wakes librdkafka's fetcher
 * (fetch_waker.c).
 */
#ifndef SR_FETCH_WAKER_H
#define SR_FETCH_WAKER_H

#include "postgres.h"

#include <librdkafka/rdkafka.h>

extern void sr_waker_start(rd_kafka_t *rk, const char *topic);
extern bool sr_waker_request(int32 partition);
extern bool sr_waker_result(int32 *partition, int64 *high);
extern bool sr_waker_stop(int timeout_ms);

#endif							/* SR_FETCH_WAKER_H */
