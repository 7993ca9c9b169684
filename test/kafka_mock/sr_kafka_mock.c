/*
 * sr_kafka_mock.c - Kafka test broker for sentry_relay's TAP tests, demo and
 * benchmarks.  Test-only: nothing in src/ may depend on it.
 *
 * Starts a librdkafka mock cluster (real Kafka-protocol brokers on 127.0.0.1),
 * prints "BOOTSTRAP host:port,..." on stdout, then answers each line command
 * on stdin with exactly one line, "OK[ result]" or "ERR <message>".  Logs go
 * to stderr only.  The command protocol is documented in README.md here.
 *
 * With --bootstrap ADDR it starts no mock cluster: the same protocol drives a
 * real Kafka cluster at ADDR (test/kafka/cluster.sh), topics are created and
 * configured with the Admin API, and the mock-only commands (fault injection)
 * answer "ERR not supported on a real broker".
 *
 * Usage: sr_kafka_mock [--brokers N | --bootstrap ADDR] [-X producer.property=value ...]
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define DELIVERY_DEADLINE_S 600	/* safety net; message.timeout.ms rules */
#define MAX_TOKENS 1024			/* per line: so up to 1019 headers */
#define WMARK_TIMEOUT_MS 10000
#define ADMIN_TIMEOUT_MS 30000	/* an Admin API request, and its metadata wait */
#define CONNECT_TIMEOUT_MS 30000	/* --bootstrap: first metadata answer */

static rd_kafka_t *mock_rk;		/* handle owning the mock cluster */
static rd_kafka_mock_cluster_t *mcluster;
static rd_kafka_t *producer;	/* real producer connected to the mock */
static const char *real_bootstrap;	/* --bootstrap ADDR: a real cluster, no mock */
static int g_argc;
static char **g_argv;			/* for -X options when (re)creating it */
static int sig_fd = -1;
static int got_signal;

/*
 * Delivery tracking for the running produce command.  Each message carries the
 * command's generation number as opaque, so that late reports from an
 * abandoned command never touch the counts of a later one.
 */
typedef struct {
	intptr_t gen;
	long outstanding;			/* queued, not yet reported */
	long delivered;
	rd_kafka_resp_err_t first_err;
	int64_t last_offset;
} dr_state;

static dr_state cur;

static dr_state *dr_begin(void)
{
	cur = (dr_state) {.gen = cur.gen + 1, .last_offset = -1};
	return &cur;
}

/* ------------------------------------------------------------- output */

#define reply_ok(...) reply("OK", __VA_ARGS__)
#define reply_err(...) reply("ERR", __VA_ARGS__)

static void reply(const char *prefix, const char *fmt, ...)
{
	char buf[4096], *p;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (p = buf; *p; p++)		/* one line per reply, always */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	printf(buf[0] ? "%s %s\n" : "%s\n", prefix, buf);
	fflush(stdout);
}

static void reply_resp(rd_kafka_resp_err_t err)
{
	if (err)
		reply_err("%s: %s", rd_kafka_err2name(err), rd_kafka_err2str(err));
	else
		reply_ok("");
}

/* ------------------------------------------------------------- callbacks */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	if (rk && strncmp(rd_kafka_name(rk), "sr_kafka_mock_cluster", 21) == 0 &&
		strcmp(fac, "CONFWARN") == 0)
		return;					/* it has no bootstrap.servers, by design */
	fprintf(stderr, "sr_kafka_mock: rdkafka %d %s %s: %s\n", level,
			rk ? rd_kafka_name(rk) : "-", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void) opaque;
	fprintf(stderr, "sr_kafka_mock: rdkafka error %s: %s: %s\n",
			rd_kafka_name(rk), rd_kafka_err2name(err), reason);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	(void) rk;
	(void) opaque;
	if ((intptr_t) msg->_private != cur.gen)
		return;
	cur.outstanding--;
	if (msg->err) {
		if (!cur.first_err)
			cur.first_err = msg->err;
	} else {
		cur.delivered++;
		cur.last_offset = msg->offset;
	}
}

/* Non-blocking check of the signalfd; sets got_signal on SIGTERM/INT/HUP. */
static int check_signal(void)
{
	struct signalfd_siginfo si;

	if (!got_signal && sig_fd >= 0 && read(sig_fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
		fprintf(stderr, "sr_kafka_mock: got signal %u, exiting\n", si.ssi_signo);
		got_signal = 1;
	}
	return got_signal;
}

/* ------------------------------------------------------------- parsing */

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* parse_long that answers "ERR bad <what>" itself on failure */
static int arg_long(const char *s, long min, long max, long *out, const char *what)
{
	if (parse_long(s, min, max, out) == 0)
		return 0;
	reply_err("bad %s \"%s\" (expected an integer in %ld..%ld)", what, s, min, max);
	return -1;
}

/* The value of a hex digit (already checked to be one). */
static int hex_nibble(char c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/*
 * Decode a hex token in place.  "-" means NULL (*out = NULL), "" or the two
 * characters "" mean an empty (non-NULL) value.  Returns -1 on bad hex.
 */
static int decode_hex(char *s, char **out, size_t *len)
{
	size_t n, i;

	*out = NULL;
	if ((*len = 0), strcmp(s, "-") == 0)
		return 0;
	if (strcmp(s, "\"\"") == 0)
		s[0] = '\0';
	n = strlen(s);
	if (n % 2 || strspn(s, "0123456789abcdefABCDEF") != n)
		return -1;
	/*
	 * Reads at 2i, 2i+1 >= i: safe in place.  Not sscanf("%2x"): glibc's
	 * sscanf takes strlen of its input on every call, which made this
	 * quadratic (minutes for one 1 MB value).
	 */
	for (i = 0; i < n / 2; i++)
		s[i] = (char) (hex_nibble(s[2 * i]) << 4 | hex_nibble(s[2 * i + 1]));
	*out = s;
	*len = n / 2;
	return 0;
}

/* Split line into whitespace-separated tokens (modifies line); -1 if too many. */
static int tokenize(char *line, char **toks)
{
	int n = 0;
	char *save = NULL, *t;

	for (t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save))
		if (n == MAX_TOKENS)
			return -1;
		else
			toks[n++] = t;
	return n;
}

/* ------------------------------------------------------------- producer */

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char errstr[512];

	if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
		return 0;
	fprintf(stderr, "sr_kafka_mock: config %s=%s: %s\n", k, v, errstr);
	return -1;
}

/* Create the producer used by the produce commands; -X values win. */
static rd_kafka_t *make_producer(void)
{
	static const char *const defaults[][2] = {
		{"client.id", "sr_kafka_mock_producer"},
		{"linger.ms", "5"},
		{"enable.idempotence", "true"},		/* keeps order across retries */
		{"message.timeout.ms", "20000"},
		{"queue.buffering.max.messages", "1000000"},
		{"queue.buffering.max.kbytes", "1048576"},
		{"batch.num.messages", "10000"},
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[512];
	rd_kafka_t *rk;
	size_t i;
	int a;

	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
	if (conf_set(conf, "bootstrap.servers",
				 real_bootstrap ? real_bootstrap : rd_kafka_mock_cluster_bootstraps(mcluster)) < 0)
		goto fail;
	for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (conf_set(conf, defaults[i][0], defaults[i][1]) < 0)
			goto fail;
	for (a = 1; a + 1 < g_argc; a++)
		if (strcmp(g_argv[a], "-X") == 0) {
			char *kv = strdup(g_argv[++a]), *eq = kv ? strchr(kv, '=') : NULL;
			int rc = eq ? (*eq = '\0', conf_set(conf, kv, eq + 1)) : -1;

			free(kv);
			if (rc < 0)
				goto fail;
		}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk)
		fprintf(stderr, "sr_kafka_mock: producer: %s\n", errstr);
	return rk;					/* rd_kafka_new owns conf on success */
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* Replace the producer if an injected error made it fatally failed. */
static int ensure_producer(void)
{
	char errstr[512];
	rd_kafka_resp_err_t err = rd_kafka_fatal_error(producer, errstr, sizeof(errstr));
	rd_kafka_t *rk;

	if (!err)
		return 0;
	fprintf(stderr, "sr_kafka_mock: producer had fatal error %s (%s): re-creating it\n",
			rd_kafka_err2name(err), errstr);
	if (!(rk = make_producer())) {
		reply_err("cannot re-create producer after fatal error %s", rd_kafka_err2name(err));
		return -1;
	}
	rd_kafka_purge(producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_destroy(producer);
	producer = rk;
	return 0;
}

/*
 * Queue one message from tokens "TOPIC PARTITION KEYHEX VALUEHEX [H=V ...]"
 * (only parse them if st is NULL).  Returns 0 if queued, -1 with errbuf
 * filled on a parse or producev error.
 */
static int queue_message(char **tok, int ntok, dr_state *st, char *errbuf, size_t errlen)
{
	long part;
	char *key, *val;
	size_t klen, vlen;
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_resp_err_t err = 0;
	int i;

#define QFAIL(...) do { snprintf(errbuf, errlen, __VA_ARGS__); goto fail; } while (0)
	if (ntok < 4)
		QFAIL("expected TOPIC PARTITION KEYHEX VALUEHEX [HNAME=HVALHEX ...]");
	if (parse_long(tok[1], -1, INT32_MAX, &part) < 0)
		QFAIL("bad partition \"%s\"", tok[1]);
	if (decode_hex(tok[2], &key, &klen) < 0 || decode_hex(tok[3], &val, &vlen) < 0)
		QFAIL("bad key or value hex");
	if (ntok > 4)
		hdrs = rd_kafka_headers_new(ntok - 4);
	for (i = 4; i < ntok; i++) {
		char *eq = strchr(tok[i], '='), *hv;
		size_t hlen;

		if (!eq || eq == tok[i] || (*eq = '\0', decode_hex(eq + 1, &hv, &hlen) < 0) ||
			(err = rd_kafka_header_add(hdrs, tok[i], -1, hv, (ssize_t) hlen)) != 0) {
			if (eq)
				*eq = '=';
			QFAIL("bad header \"%s\" (expected NAME=HEX)%s%s", tok[i], err ? ": " : "",
				  err ? rd_kafka_err2str(err) : "");
		}
	}
	if (!st) {					/* dry run: parsed fine */
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		return 0;
	}
	for (;;) {
		err = rd_kafka_producev(producer,
								RD_KAFKA_V_TOPIC(tok[0]),
								RD_KAFKA_V_PARTITION((int32_t) part),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_KEY(key, klen),
								RD_KAFKA_V_VALUE(val, vlen),
								RD_KAFKA_V_HEADERS(hdrs),
								RD_KAFKA_V_OPAQUE((void *) st->gen),
								RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || check_signal())
			break;
		rd_kafka_poll(producer, 10);	/* queue full: serve reports, retry */
	}
	if (err)
		QFAIL("produce to %s [%ld]: %s", tok[0], part, rd_kafka_err2str(err));
	st->outstanding++;
	return 0;
fail:
	if (hdrs)					/* not handed over to librdkafka */
		rd_kafka_headers_destroy(hdrs);
	return -1;
#undef QFAIL
}

/* Serve delivery reports until none are outstanding; NULL or why not. */
static const char *wait_delivered(dr_state *st)
{
	time_t deadline = time(NULL) + DELIVERY_DEADLINE_S;

	rd_kafka_poll(producer, 0);
	while (st->outstanding > 0) {
		if (check_signal())
			return "interrupted by signal";
		if (time(NULL) > deadline)
			return "timed out waiting for delivery reports";
		rd_kafka_flush(producer, 100);	/* also serves delivery reports */
		rd_kafka_poll(producer, 0);
	}
	return NULL;
}

/* ------------------------------------------------------------- commands */

static void cmd_produce(char **tok, int ntok)
{
	dr_state *st = dr_begin();
	char errbuf[512];
	const char *why;

	if (ensure_producer() < 0)
		return;
	if (queue_message(tok + 1, ntok - 1, st, errbuf, sizeof(errbuf)) < 0)
		reply_err("%s", errbuf);
	else if ((why = wait_delivered(st)) != NULL)
		reply_err("%s", why);
	else if (st->first_err)
		reply_err("delivery failed: %s: %s", rd_kafka_err2name(st->first_err),
				  rd_kafka_err2str(st->first_err));
	else
		reply_ok("%" PRId64, st->last_offset);
}

static void cmd_produce_file(char **tok, int ntok)
{
	dr_state *st = dr_begin();
	static char *ftok[MAX_TOKENS];
	char *line = NULL, errbuf[512], fail[700] = "";
	size_t cap = 0;
	int n, pass;
	long lineno = 0;
	const char *why;
	FILE *f;

	(void) ntok;
	if (ensure_producer() < 0)
		return;
	if (!(f = fopen(tok[1], "r"))) {
		reply_err("cannot open \"%s\": %s", tok[1], strerror(errno));
		return;
	}
	/* pass 0 checks every line, so that a bad file produces nothing */
	for (pass = 0; pass < 2 && !fail[0] && !st->first_err && !check_signal(); pass++) {
		rewind(f);
		for (lineno = 1; getline(&line, &cap, f) >= 0; lineno++) {
			if ((n = tokenize(line, ftok)) < 0) {
				snprintf(fail, sizeof(fail), "%s line %ld: too many fields", tok[1], lineno);
				break;
			}
			if (n == 0 || ftok[0][0] == '#')
				continue;
			if (queue_message(ftok, n, pass ? st : NULL, errbuf, sizeof(errbuf)) < 0) {
				snprintf(fail, sizeof(fail), "%s line %ld: %s", tok[1], lineno, errbuf);
				break;
			}
			if (pass && (lineno & 1023) == 0)
				rd_kafka_poll(producer, 0);
			if (st->first_err || check_signal())
				break;
		}
	}
	if (!fail[0] && ferror(f))
		snprintf(fail, sizeof(fail), "read error on \"%s\"", tok[1]);
	fclose(f);
	free(line);

	/* always drain what was queued, so the next command starts clean */
	if ((why = wait_delivered(st)) != NULL && !fail[0])
		snprintf(fail, sizeof(fail), "%s (%ld outstanding)", why, st->outstanding);
	if (fail[0])
		reply_err("%s (%ld delivered)", fail, st->delivered);
	else if (st->first_err)
		reply_err("delivery failed: %s: %s (%ld delivered)", rd_kafka_err2name(st->first_err),
				  rd_kafka_err2str(st->first_err), st->delivered);
	else
		reply_ok("%ld", st->delivered);
}

/* ------------------------------------------------------------- admin (real broker) */

/*
 * Run one Admin API request on the producer's handle: fn queues it on a
 * temporary queue; returns the result event (or NULL, with errbuf filled, on
 * a timeout or a request-level error).
 */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t type,
									char *errbuf, size_t errlen)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 5000);

	if (!ev) {
		snprintf(errbuf, errlen, "no answer to the admin request in %d ms",
				 ADMIN_TIMEOUT_MS + 5000);
		return NULL;
	}
	if (rd_kafka_event_type(ev) != type || rd_kafka_event_error(ev)) {
		snprintf(errbuf, errlen, "%s: %s", rd_kafka_err2name(rd_kafka_event_error(ev)),
				 rd_kafka_event_error_string(ev));
		rd_kafka_event_destroy(ev);
		return NULL;
	}
	return ev;
}

static rd_kafka_AdminOptions_t *admin_options(rd_kafka_admin_op_t op)
{
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(producer, op);
	char errstr[256];

	rd_kafka_AdminOptions_set_request_timeout(o, ADMIN_TIMEOUT_MS, errstr, sizeof(errstr));
	if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS)
		rd_kafka_AdminOptions_set_operation_timeout(o, ADMIN_TIMEOUT_MS, errstr, sizeof(errstr));
	return o;
}

/*
 * Wait until the metadata shows topic with nparts partitions, each with a
 * leader (nparts 0: until the topic is gone).  NULL, or why not.
 */
static const char *wait_topic_metadata(const char *topic, int nparts, char *errbuf, size_t errlen)
{
	struct timespec t0, t;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(producer, topic, NULL);
	const char *why = "no metadata";

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t err = rd_kafka_metadata(producer, 0, rkt, &md, 5000);
		int ok = 0, i;

		if (err)
			snprintf(errbuf, errlen, "metadata: %s", rd_kafka_err2str(err));
		else if (md->topic_cnt != 1)
			snprintf(errbuf, errlen, "metadata has %d topics", md->topic_cnt);
		else if (nparts == 0)
			ok = md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
		else if (md->topics[0].err)
			snprintf(errbuf, errlen, "topic: %s", rd_kafka_err2str(md->topics[0].err));
		else if (md->topics[0].partition_cnt != nparts)
			snprintf(errbuf, errlen, "%d of %d partitions", md->topics[0].partition_cnt, nparts);
		else {
			for (ok = 1, i = 0; i < nparts; i++)
				if (md->topics[0].partitions[i].leader < 0 || md->topics[0].partitions[i].err) {
					snprintf(errbuf, errlen, "partition %d has no leader",
							 md->topics[0].partitions[i].id);
					ok = 0;
				}
		}
		if (md)
			rd_kafka_metadata_destroy(md);
		if (ok) {
			why = NULL;
			break;
		}
		why = errbuf;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ADMIN_TIMEOUT_MS ||
			check_signal())
			break;
		usleep(50000);
		rd_kafka_poll(producer, 0);
	}
	rd_kafka_topic_destroy(rkt);
	return why;
}

/* The first error of a topic result array, or 0. */
static rd_kafka_resp_err_t topic_results_err(const rd_kafka_topic_result_t **res, size_t n,
											 const char **msg)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (rd_kafka_topic_result_error(res[i])) {
			*msg = rd_kafka_topic_result_error_string(res[i]);
			return rd_kafka_topic_result_error(res[i]);
		}
	return 0;
}

/* Split "NAME=VALUE" in place; -1 (and an ERR answer) if it is not one. */
static int split_config(char *kv, char **value)
{
	char *eq = strchr(kv, '=');

	if (!eq || eq == kv) {
		reply_err("bad config \"%s\" (expected NAME=VALUE)", kv);
		return -1;
	}
	*eq = '\0';
	*value = eq + 1;
	return 0;
}

static void create_topic_real(const char *name, int parts, int repl, char **cfg, int ncfg)
{
	char errstr[512], mdbuf[256], *v;
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, parts, repl, errstr, sizeof(errstr));
	rd_kafka_queue_t *q;
	rd_kafka_AdminOptions_t *opts;
	rd_kafka_event_t *ev;
	const rd_kafka_topic_result_t **res;
	rd_kafka_resp_err_t err;
	const char *msg = NULL, *why;
	size_t n;
	int i;

	if (!nt) {
		reply_err("%s", errstr);
		return;
	}
	for (i = 0; i < ncfg; i++) {
		if (split_config(cfg[i], &v) < 0) {
			rd_kafka_NewTopic_destroy(nt);
			return;
		}
		if ((err = rd_kafka_NewTopic_set_config(nt, cfg[i], v)) != 0) {
			reply_err("config %s: %s", cfg[i], rd_kafka_err2str(err));
			rd_kafka_NewTopic_destroy(nt);
			return;
		}
	}
	q = rd_kafka_queue_new(producer);
	opts = admin_options(RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_CreateTopics(producer, &nt, 1, opts, q);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_NewTopic_destroy(nt);
	if ((ev = admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, errstr, sizeof(errstr)))) {
		res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
		if ((err = topic_results_err(res, n, &msg)) != 0)
			snprintf(errstr, sizeof(errstr), "%s: %s", rd_kafka_err2name(err),
					 msg ? msg : rd_kafka_err2str(err));
		rd_kafka_event_destroy(ev);
		if (!err && (why = wait_topic_metadata(name, parts, mdbuf, sizeof(mdbuf))) != NULL)
			snprintf(errstr, sizeof(errstr), "created, but not ready in %d ms: %s",
					 ADMIN_TIMEOUT_MS, why);
		else if (!err)
			errstr[0] = '\0';
	}
	rd_kafka_queue_destroy(q);
	if (errstr[0])
		reply_err("create_topic %s: %s", name, errstr);
	else
		reply_ok("");
}

/*
 * create_topic NAME PARTITIONS [REPLICATION] [CONFIG=VALUE ...]: the mock
 * ignores the configs (but checks their syntax).
 */
static void cmd_create_topic(char **tok, int ntok)
{
	long parts, repl = 1;
	int first_cfg = 3, i;
	char *v;

	if (arg_long(tok[2], 1, 100000, &parts, "partition count") < 0)
		return;
	if (ntok > 3 && !strchr(tok[3], '=')) {
		if (arg_long(tok[3], 1, 1000, &repl, "replication factor") < 0)
			return;
		first_cfg = 4;
	}
	if (real_bootstrap) {
		create_topic_real(tok[1], (int) parts, (int) repl, tok + first_cfg, ntok - first_cfg);
		return;
	}
	for (i = first_cfg; i < ntok; i++)
		if (split_config(tok[i], &v) < 0)
			return;
	reply_resp(rd_kafka_mock_topic_create(mcluster, tok[1], (int) parts, (int) repl));
}

/*
 * DescribeConfigs of topic name: returns the result event (caller destroys
 * it) and its resource, or NULL with errbuf filled.
 */
static rd_kafka_event_t *describe_topic(const char *name, const rd_kafka_ConfigResource_t **resp,
										char *errbuf, size_t errlen)
{
	rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name);
	rd_kafka_queue_t *q = rd_kafka_queue_new(producer);
	rd_kafka_AdminOptions_t *opts = admin_options(RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
	const rd_kafka_ConfigResource_t **res;
	rd_kafka_event_t *ev;
	size_t n;

	rd_kafka_DescribeConfigs(producer, &cr, 1, opts, q);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_ConfigResource_destroy(cr);
	ev = admin_wait(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, errbuf, errlen);
	rd_kafka_queue_destroy(q);
	if (!ev)
		return NULL;
	res = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
	if (n != 1 || rd_kafka_ConfigResource_error(res[0])) {
		snprintf(errbuf, errlen, "%s: %s",
				 n == 1 ? rd_kafka_err2name(rd_kafka_ConfigResource_error(res[0])) : "?",
				 n == 1 ? rd_kafka_ConfigResource_error_string(res[0]) : "no resource in the answer");
		rd_kafka_event_destroy(ev);
		return NULL;
	}
	*resp = res[0];
	return ev;
}

/* The value of config key in a described resource (NULL: unset or absent). */
static const char *config_value(const rd_kafka_ConfigResource_t *r, const char *key, int *found)
{
	size_t n, i;
	const rd_kafka_ConfigEntry_t **e = rd_kafka_ConfigResource_configs(r, &n);

	*found = 0;
	for (i = 0; i < n; i++)
		if (strcmp(rd_kafka_ConfigEntry_name(e[i]), key) == 0) {
			*found = 1;
			return rd_kafka_ConfigEntry_value(e[i]);
		}
	return NULL;
}

/* topic_config NAME KEY: "OK <value>" (real broker only). */
static void cmd_topic_config(char **tok, int ntok)
{
	const rd_kafka_ConfigResource_t *r;
	rd_kafka_event_t *ev;
	char errbuf[512];
	const char *v;
	int found;

	(void) ntok;
	if (!real_bootstrap) {
		reply_err("not supported by the mock cluster");
		return;
	}
	if (!(ev = describe_topic(tok[1], &r, errbuf, sizeof(errbuf)))) {
		reply_err("describe %s: %s", tok[1], errbuf);
		return;
	}
	v = config_value(r, tok[2], &found);
	if (!found)
		reply_err("topic %s has no config %s", tok[1], tok[2]);
	else
		reply_ok("%s", v ? v : "-");
	rd_kafka_event_destroy(ev);
}

/*
 * alter_topic NAME CONFIG=VALUE...: AlterConfigs (librdkafka 2.0.2 has no
 * IncrementalAlterConfigs), which replaces all of the topic's dynamic
 * configs: so the current ones are described first and sent again with the
 * new values.  Then waits until DescribeConfigs shows the new values.  The
 * mock ignores configs: answers OK.
 */
static void cmd_alter_topic(char **tok, int ntok)
{
	const rd_kafka_ConfigResource_t *cur;
	rd_kafka_ConfigResource_t *cr;
	const rd_kafka_ConfigEntry_t **e;
	rd_kafka_event_t *ev;
	rd_kafka_queue_t *q;
	rd_kafka_AdminOptions_t *opts;
	rd_kafka_resp_err_t err;
	char errbuf[512] = "", *vals[MAX_TOKENS];
	size_t n, i;
	int k, found, tries;

	for (k = 2; k < ntok; k++)
		if (split_config(tok[k], &vals[k]) < 0)
			return;
	if (!real_bootstrap) {
		reply_ok("");
		return;
	}
	if (!(ev = describe_topic(tok[1], &cur, errbuf, sizeof(errbuf)))) {
		reply_err("describe %s: %s", tok[1], errbuf);
		return;
	}
	cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, tok[1]);
	e = rd_kafka_ConfigResource_configs(cur, &n);
	for (i = 0; i < n; i++) {
		const char *name = rd_kafka_ConfigEntry_name(e[i]);

		if (rd_kafka_ConfigEntry_source(e[i]) != RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG)
			continue;
		for (k = 2; k < ntok && strcmp(tok[k], name) != 0; k++)
			;
		if (k == ntok)			/* kept as it is */
			rd_kafka_ConfigResource_set_config(cr, name, rd_kafka_ConfigEntry_value(e[i]));
	}
	rd_kafka_event_destroy(ev);
	for (k = 2; k < ntok; k++)
		rd_kafka_ConfigResource_set_config(cr, tok[k], vals[k]);

	q = rd_kafka_queue_new(producer);
	opts = admin_options(RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
	rd_kafka_AlterConfigs(producer, &cr, 1, opts, q);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_ConfigResource_destroy(cr);
	ev = admin_wait(q, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT, errbuf, sizeof(errbuf));
	rd_kafka_queue_destroy(q);
	if (!ev) {
		reply_err("alter %s: %s", tok[1], errbuf);
		return;
	}
	{
		const rd_kafka_ConfigResource_t **res =
			rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);

		err = n == 1 ? rd_kafka_ConfigResource_error(res[0]) : RD_KAFKA_RESP_ERR__FAIL;
		if (err)
			snprintf(errbuf, sizeof(errbuf), "%s: %s", rd_kafka_err2name(err),
					 n == 1 ? rd_kafka_ConfigResource_error_string(res[0]) : "no resource");
		rd_kafka_event_destroy(ev);
	}
	if (err) {
		reply_err("alter %s: %s", tok[1], errbuf);
		return;
	}
	/* the brokers apply it asynchronously: wait until it shows (100 x 100 ms) */
	for (tries = 0; tries < 100 && !check_signal(); tries++, usleep(100000)) {
		const char *v;

		if (!(ev = describe_topic(tok[1], &cur, errbuf, sizeof(errbuf))))
			continue;
		for (k = 2; k < ntok; k++)
			if (!(v = config_value(cur, tok[k], &found)) || strcmp(v, vals[k]) != 0)
				break;
		rd_kafka_event_destroy(ev);
		if (k == ntok) {
			reply_ok("");
			return;
		}
	}
	reply_err("alter %s: accepted, but the new values do not show after 10 s", tok[1]);
}

/* delete_topic NAME: DeleteTopics, then waits until the metadata has no topic. */
static void cmd_delete_topic(char **tok, int ntok)
{
	rd_kafka_DeleteTopic_t *dt;
	rd_kafka_queue_t *q;
	rd_kafka_AdminOptions_t *opts;
	rd_kafka_event_t *ev;
	rd_kafka_resp_err_t err = 0;
	const char *msg = NULL;
	char errbuf[512] = "";
	size_t n;

	(void) ntok;
	if (!real_bootstrap) {
		reply_err("not supported by the mock cluster");
		return;
	}
	dt = rd_kafka_DeleteTopic_new(tok[1]);
	q = rd_kafka_queue_new(producer);
	opts = admin_options(RD_KAFKA_ADMIN_OP_DELETETOPICS);
	rd_kafka_DeleteTopics(producer, &dt, 1, opts, q);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_DeleteTopic_destroy(dt);
	ev = admin_wait(q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, errbuf, sizeof(errbuf));
	rd_kafka_queue_destroy(q);
	if (!ev) {
		reply_err("delete %s: %s", tok[1], errbuf);
		return;
	}
	{
		const rd_kafka_topic_result_t **res =
			rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);

		err = topic_results_err(res, n, &msg);
	}
	if (err)
		snprintf(errbuf, sizeof(errbuf), "%s: %s", rd_kafka_err2name(err),
				 msg ? msg : rd_kafka_err2str(err));
	rd_kafka_event_destroy(ev);
	if (err)
		reply_err("delete %s: %s", tok[1], errbuf);
	else if (wait_topic_metadata(tok[1], 0, errbuf, sizeof(errbuf)))
		reply_err("delete %s: deleted, but still in the metadata after %d ms", tok[1],
				  ADMIN_TIMEOUT_MS);
	else
		reply_ok("");
}

/*
 * delete_group_offsets GROUP TOPIC PARTITION...: DeleteConsumerGroupOffsets
 * (real broker only), as kafka-consumer-groups.sh --delete-offsets.  The
 * broker refuses (GROUP_SUBSCRIBED_TO_TOPIC) while a member of the group
 * consumes the topic: that error is the answer, for the caller to retry.
 */
static void cmd_delete_group_offsets(char **tok, int ntok)
{
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_DeleteConsumerGroupOffsets_t *d;
	rd_kafka_queue_t *q;
	rd_kafka_AdminOptions_t *opts;
	rd_kafka_event_t *ev;
	const rd_kafka_group_result_t **res;
	const rd_kafka_error_t *gerr;
	const rd_kafka_topic_partition_list_t *rp;
	char errbuf[512] = "";
	size_t n;
	long part;
	int i;

	if (!real_bootstrap) {
		reply_err("not supported by the mock cluster");
		return;
	}
	if (ensure_producer() < 0)
		return;
	parts = rd_kafka_topic_partition_list_new(ntok - 3);
	for (i = 3; i < ntok; i++) {
		if (arg_long(tok[i], 0, INT32_MAX, &part, "partition") < 0) {
			rd_kafka_topic_partition_list_destroy(parts);
			return;
		}
		rd_kafka_topic_partition_list_add(parts, tok[2], (int32_t) part);
	}
	d = rd_kafka_DeleteConsumerGroupOffsets_new(tok[1], parts);
	rd_kafka_topic_partition_list_destroy(parts);
	q = rd_kafka_queue_new(producer);
	opts = admin_options(RD_KAFKA_ADMIN_OP_DELETECONSUMERGROUPOFFSETS);
	rd_kafka_DeleteConsumerGroupOffsets(producer, &d, 1, opts, q);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_DeleteConsumerGroupOffsets_destroy(d);
	ev = admin_wait(q, RD_KAFKA_EVENT_DELETECONSUMERGROUPOFFSETS_RESULT, errbuf, sizeof(errbuf));
	rd_kafka_queue_destroy(q);
	if (!ev) {
		reply_err("delete_group_offsets %s: %s", tok[1], errbuf);
		return;
	}
	res = rd_kafka_DeleteConsumerGroupOffsets_result_groups(
		rd_kafka_event_DeleteConsumerGroupOffsets_result(ev), &n);
	if (n != 1)
		snprintf(errbuf, sizeof(errbuf), "%zu group results, not 1", n);
	else if ((gerr = rd_kafka_group_result_error(res[0])) != NULL)
		snprintf(errbuf, sizeof(errbuf), "%s: %s", rd_kafka_error_name(gerr),
				 rd_kafka_error_string(gerr));
	else if ((rp = rd_kafka_group_result_partitions(res[0])) != NULL)
		for (i = 0; i < rp->cnt && !errbuf[0]; i++)
			if (rp->elems[i].err)
				snprintf(errbuf, sizeof(errbuf), "partition %d: %s", (int) rp->elems[i].partition,
						 rd_kafka_err2name(rp->elems[i].err));
	rd_kafka_event_destroy(ev);
	if (errbuf[0])
		reply_err("delete_group_offsets %s: %s", tok[1], errbuf);
	else
		reply_ok("");
}

/* The fault-injection commands exist only on the mock. */
static int mock_only(void)
{
	if (real_bootstrap)
		reply_err("not supported on a real broker");
	return real_bootstrap != NULL;
}

static void cmd_broker(char **tok, int ntok)
{
	long id, ms;

	(void) ntok;
	if (mock_only() || arg_long(tok[1], -1, INT32_MAX, &id, "broker id") < 0)
		return;
	if (strcmp(tok[0], "broker_down") == 0)
		reply_resp(rd_kafka_mock_broker_set_down(mcluster, (int32_t) id));
	else if (strcmp(tok[0], "broker_up") == 0)
		reply_resp(rd_kafka_mock_broker_set_up(mcluster, (int32_t) id));
	else if (arg_long(tok[2], 0, INT_MAX, &ms, "milliseconds") == 0)
		reply_resp(rd_kafka_mock_broker_set_rtt(mcluster, (int32_t) id, (int) ms));
}

static void cmd_push_errors(char **tok, int ntok)
{
	long apikey, cnt, v, i;
	int nerr = ntok - 3;
	rd_kafka_resp_err_t *errs;

	if (mock_only() || arg_long(tok[1], 0, 1000, &apikey, "api key") < 0 ||
		arg_long(tok[2], 1, 100000, &cnt, "count") < 0)
		return;
	if (nerr != 1 && nerr != cnt) {
		reply_err("COUNT is %ld but %d error codes given", cnt, nerr);
		return;
	}
	if (!(errs = calloc(cnt, sizeof(*errs)))) {
		reply_err("out of memory");
		return;
	}
	for (i = 0; i < cnt; i++) {
		if (arg_long(tok[3 + (nerr == 1 ? 0 : i)], -200, 1000, &v, "error code") < 0) {
			free(errs);
			return;
		}
		errs[i] = (rd_kafka_resp_err_t) v;
	}
	rd_kafka_mock_push_request_errors_array(mcluster, (int16_t) apikey, cnt, errs);
	free(errs);
	reply_ok("");
}

static void cmd_set_leader(char **tok, int ntok)
{
	long part, id;

	(void) ntok;
	if (!mock_only() && arg_long(tok[2], 0, INT32_MAX, &part, "partition") == 0 &&
		arg_long(tok[3], -1, INT32_MAX, &id, "broker id") == 0)
		reply_resp(rd_kafka_mock_partition_set_leader(mcluster, tok[1], (int32_t) part,
													  (int32_t) id));
}

static void cmd_end_offsets(char **tok, int ntok)
{
	long part;
	int64_t lo = -1, hi = -1;
	rd_kafka_resp_err_t err;

	(void) ntok;
	if (arg_long(tok[2], 0, INT32_MAX, &part, "partition") < 0 || ensure_producer() < 0)
		return;
	err = rd_kafka_query_watermark_offsets(producer, tok[1], (int32_t) part, &lo, &hi,
										   WMARK_TIMEOUT_MS);
	if (err)
		reply_resp(err);
	else
		reply_ok("%" PRId64 " %" PRId64, lo, hi);
}

static const struct command {
	const char *name;
	int minargs, maxargs;		/* not counting the command name; -1 = any */
	void (*fn)(char **tok, int ntok);
	const char *usage;
} commands[] = {
	{"create_topic", 2, -1, cmd_create_topic, "NAME PARTITIONS [REPLICATION] [CONFIG=VALUE ...]"},
	{"alter_topic", 2, -1, cmd_alter_topic, "NAME CONFIG=VALUE [CONFIG=VALUE ...]"},
	{"topic_config", 2, 2, cmd_topic_config, "NAME CONFIG"},
	{"delete_topic", 1, 1, cmd_delete_topic, "NAME"},
	{"delete_group_offsets", 3, -1, cmd_delete_group_offsets, "GROUP TOPIC PARTITION [PARTITION...]"},
	{"produce", 4, -1, cmd_produce, "TOPIC PARTITION KEYHEX VALUEHEX [HNAME=HVALHEX ...]"},
	{"produce_file", 1, 1, cmd_produce_file, "PATH"},
	{"broker_down", 1, 1, cmd_broker, "BROKER_ID"},
	{"broker_up", 1, 1, cmd_broker, "BROKER_ID"},
	{"rtt", 2, 2, cmd_broker, "BROKER_ID MS"},
	{"push_errors", 3, -1, cmd_push_errors, "APIKEY COUNT ERRCODE [ERRCODE...]"},
	{"set_leader", 3, 3, cmd_set_leader, "TOPIC PARTITION BROKER_ID"},
	{"end_offsets", 2, 2, cmd_end_offsets, "TOPIC PARTITION"},
};

/* Run one command line, answering exactly one line.  Returns 1 on quit. */
static int dispatch(char *line)
{
	static char *tok[MAX_TOKENS];
	int n = tokenize(line, tok);
	size_t i;

	if (n < 0)
		reply_err("too many fields (max %d)", MAX_TOKENS);
	else if (n == 0)
		reply_err("empty command");
	else if ((strcmp(tok[0], "ping") == 0 || strcmp(tok[0], "quit") == 0) && n > 1)
		reply_err("usage: %s", tok[0]);
	else if (strcmp(tok[0], "ping") == 0)
		reply_ok("");
	else if (strcmp(tok[0], "quit") == 0) {
		reply_ok("");
		return 1;
	} else {
		for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
			const struct command *c = &commands[i];

			if (strcmp(tok[0], c->name) != 0)
				continue;
			if (n - 1 < c->minargs || (c->maxargs >= 0 && n - 1 > c->maxargs))
				reply_err("usage: %s %s", c->name, c->usage);
			else
				c->fn(tok, n);
			return 0;
		}
		reply_err("unknown command \"%s\"", tok[0]);
	}
	return 0;
}

/* ------------------------------------------------------------- main */

static int fail(const char *what, const char *detail)
{
	fprintf(stderr, "sr_kafka_mock: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	return 1;
}

int main(int argc, char **argv)
{
	long brokers = 1;
	rd_kafka_conf_t *conf;
	char errstr[512], *buf = NULL, *nl;
	size_t buflen = 0, bufcap = 0;
	sigset_t sigs;
	int done = 0, i;
	ssize_t r;

	for (i = 1; i < argc; i++)
		if (i + 1 >= argc ||
			(strcmp(argv[i], "--brokers") == 0 ? parse_long(argv[++i], 1, 64, &brokers) < 0 :
			 strcmp(argv[i], "--bootstrap") == 0 ? !*(real_bootstrap = argv[++i]) :
			 strcmp(argv[i], "-X") != 0 || !strchr(argv[++i], '=')))
			return fail("usage: sr_kafka_mock [--brokers N | --bootstrap ADDR] "
						"[-X producer.prop=value ...]", NULL);
	g_argc = argc;
	g_argv = argv;

	/*
	 * Block the exit signals before any librdkafka thread exists, so that
	 * every thread inherits the mask; they are only read through signalfd.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0 ||
		(sig_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return fail("signalfd", strerror(errno));
	signal(SIGPIPE, SIG_IGN);

	if (real_bootstrap) {
		/* a real cluster: ready once it answers a metadata request */
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t err;
		struct timespec t0, t;

		if (!(producer = make_producer()))
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while ((err = rd_kafka_metadata(producer, 0, NULL, &md, 5000)) != 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (check_signal() || t.tv_sec - t0.tv_sec > CONNECT_TIMEOUT_MS / 1000)
				return fail("no metadata from the cluster at", real_bootstrap);
			fprintf(stderr, "sr_kafka_mock: metadata from %s: %s: retrying\n",
					real_bootstrap, rd_kafka_err2str(err));
			usleep(200000);
		}
		rd_kafka_metadata_destroy(md);
		printf("BOOTSTRAP %s\n", real_bootstrap);
	} else {
		/* Handle that owns the mock cluster; it never connects anywhere. */
		conf = rd_kafka_conf_new();
		rd_kafka_conf_set_log_cb(conf, log_cb);
		if (conf_set(conf, "client.id", "sr_kafka_mock_cluster") < 0)
			return 1;
		if (!(mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))))
			return fail("rd_kafka_new", errstr);
		if (!(mcluster = rd_kafka_mock_cluster_new(mock_rk, (int) brokers)))
			return fail("rd_kafka_mock_cluster_new failed", NULL);
		if (!(producer = make_producer()))
			return 1;
		printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
	}
	fflush(stdout);

	/* Command loop over stdin lines and signals, serving delivery reports. */
	while (!done && !check_signal()) {
		struct pollfd pfd[2] = {{0, POLLIN, 0}, {sig_fd, POLLIN, 0}};

		rd_kafka_poll(producer, 0);
		if (poll(pfd, 2, 100) < 0 && errno != EINTR)
			break;
		if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (bufcap - buflen < 65536) {
			char *nb = realloc(buf, bufcap * 2 + 65536);

			if (!nb)
				break;			/* out of memory */
			buf = nb;
			bufcap = bufcap * 2 + 65536;
		}
		r = read(0, buf + buflen, bufcap - buflen - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* EOF (or error) on stdin: run an unterminated last line, exit */
			if (buflen > 0) {
				buf[buflen] = '\0';
				dispatch(buf);
			}
			break;
		}
		buflen += r;
		while (!done && (nl = memchr(buf, '\n', buflen)) != NULL) {
			size_t ll = nl - buf + 1;

			*nl = '\0';
			done = dispatch(buf);
			memmove(buf, buf + ll, buflen - ll);
			buflen -= ll;
		}
	}
	free(buf);

	/* only an interrupted command leaves messages behind: drop them */
	rd_kafka_purge(producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(producer, 0);
	rd_kafka_destroy(producer);
	if (mcluster)
		rd_kafka_mock_cluster_destroy(mcluster);
	if (mock_rk)
		rd_kafka_destroy(mock_rk);
	close(sig_fd);
	return 0;
}
