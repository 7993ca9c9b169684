/*
 * stream.c - parsing and validation of stream options, and the SQL helpers
 * behind the stream functions: option validation, wake-ups and the status
 * of the workers.
 */
#include "postgres.h"

#include <librdkafka/rdkafka.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "shmem.h"
#include "stream.h"

PG_FUNCTION_INFO_V1(sr_validate_options);
PG_FUNCTION_INFO_V1(sr_wake_launcher);
PG_FUNCTION_INFO_V1(sr_wake_stream);
PG_FUNCTION_INFO_V1(sr_worker_status);
PG_FUNCTION_INFO_V1(sr_caller_is_superuser);
PG_FUNCTION_INFO_V1(sr_check_option_privileges);

/* librdkafka properties that sentry_relay sets itself. */
static const char *const sr_reserved_props[] = {
	"group.id", "enable.auto.commit", "enable.auto.offset.store",
	"auto.offset.reset", "bootstrap.servers", "metadata.broker.list",
	"log.queue", "enable.partition.eof", "client.id", "group.instance.id", NULL
};

bool
sr_property_is_secret(const char *name)
{
	return strstr(name, "password") != NULL || strstr(name, "secret") != NULL ||
		strstr(name, "jaas") != NULL || strstr(name, ".key") != NULL ||
		strstr(name, "token") != NULL || strstr(name, "credentials") != NULL;
}

void
sr_check_kafka_property(const char *name, const char *value, const char *what)
{
	rd_kafka_conf_t *conf;
	char		errstr[512];

	for (const char *const *r = sr_reserved_props; *r != NULL; r++)
		if (strcmp(name, *r) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: librdkafka property \"%s\" is managed by sentry_relay", what, name),
					 errhint("Use the stream's own settings (consumer_group, initial_offset_reset, options.bootstrap_servers) instead.")));
	/*
	 * librdkafka loads the libraries of plugin.library.paths as soon as the
	 * property is set.  Never here, in the backend of whoever calls
	 * create_stream: only the worker sets it (and only a superuser may write
	 * it, see sr_check_option_privileges).
	 */
	if (strcmp(name, "plugin.library.paths") == 0)
		return;
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		rd_kafka_conf_destroy(conf);
		if (sr_property_is_secret(name))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: invalid value for librdkafka property \"%s\"", what, name),
					 errhint("The value is not shown because the property holds a secret.")));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s", what, errstr),
				 errhint("See librdkafka's CONFIGURATION.md for the property names and values.")));
	}
	rd_kafka_conf_destroy(conf);
}

List *
sr_parse_property_list(const char *s, const char *what)
{
	List	   *out = NIL;
	char	   *copy = pstrdup(s ? s : "");
	char	   *save = NULL;

	for (char *tok = strtok_r(copy, ";", &save); tok != NULL; tok = strtok_r(NULL, ";", &save))
	{
		char	   *eq;
		sr_kv	   *kv;

		while (*tok == ' ' || *tok == '\t' || *tok == '\n')
			tok++;
		if (*tok == '\0')
			continue;
		eq = strchr(tok, '=');
		if (eq == NULL || eq == tok)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: expected name=value, not \"%s\"", what,
							sr_property_is_secret(tok) ? "(hidden)" : tok),
					 errhint("Separate properties with semicolons, e.g. 'security.protocol=SASL_SSL;sasl.mechanism=PLAIN'.")));
		*eq = '\0';
		kv = palloc(sizeof(sr_kv));
		kv->name = pstrdup(tok);
		kv->value = pstrdup(eq + 1);
		/* trim trailing blanks of the name */
		for (char *e = kv->name + strlen(kv->name) - 1; e >= kv->name && (*e == ' ' || *e == '\t'); e--)
			*e = '\0';
		sr_check_kafka_property(kv->name, kv->value, what);
		out = lappend(out, kv);
	}
	return out;
}

/* The text of a jsonb scalar that is a string, number or boolean. */
static char *
sr_jsonb_scalar_text(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

void
sr_parse_options(Jsonb *options, sr_stream_def *def)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	def->bootstrap_servers = NULL;
	def->eventstream_type = pstrdup("error");
	def->default_queue = NULL;
	def->keep_body = false;
	def->local_assignment = false;
	def->static_member = false;
	def->kafka_props = NIL;

	if (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream options must be a jsonb object"),
				 errhint("For example '{\"eventstream_type\": \"transaction\", \"kafka\": {\"fetch.wait.max.ms\": \"50\"}}'.")));

	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (strcmp(key, "bootstrap_servers") == 0)
		{
			if (v.type != jbvString || v.val.string.len == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"bootstrap_servers\" must be a non-empty string"),
						 errhint("For example \"kafka-1:9092,kafka-2:9092\".")));
			def->bootstrap_servers = pnstrdup(v.val.string.val, v.val.string.len);
		}
		else if (strcmp(key, "eventstream_type") == 0)
		{
			char	   *t = v.type == jbvString ? pnstrdup(v.val.string.val, v.val.string.len) : NULL;

			if (t == NULL || (strcmp(t, "error") != 0 && strcmp(t, "transaction") != 0 &&
							  strcmp(t, "generic") != 0))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"eventstream_type\" must be \"error\", \"transaction\" or \"generic\""),
						 errhint("Sentry's streams: errors use \"error\", transactions \"transaction\", the issue platform \"generic\".")));
			def->eventstream_type = t;
		}
		else if (strcmp(key, "default_queue") == 0)
		{
			if (v.type != jbvString || v.val.string.len == 0 ||
				v.val.string.len > 255 ||
				memchr(v.val.string.val, '\0', v.val.string.len) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"default_queue\" must be a string of 1 to 255 bytes"),
						 errhint("It names the queue of jobs whose message names none, for example \"post_process_transactions\".")));
			def->default_queue = pnstrdup(v.val.string.val, v.val.string.len);
		}
		else if (strcmp(key, "keep_body") == 0)
		{
			if (v.type != jbvBool)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"keep_body\" must be true or false"),
						 errhint("true stores each message's value in sentry_relay.jobs.body.")));
			def->keep_body = v.val.boolean;
		}
		else if (strcmp(key, "assignment") == 0)
		{
			char	   *a = v.type == jbvString ? pnstrdup(v.val.string.val, v.val.string.len) : NULL;

			if (a == NULL || (strcmp(a, "group") != 0 && strcmp(a, "static") != 0 &&
							  strcmp(a, "local") != 0))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"assignment\" must be \"group\", \"static\" or \"local\""),
						 errhint("\"group\" (the default) lets the Kafka consumer group share the partitions, across servers too; \"static\" does so as static members, which take their partitions back at once after a restart; \"local\" splits them among this server's workers, for a stream that runs in one server only.")));
			def->local_assignment = strcmp(a, "local") == 0;
			def->static_member = strcmp(a, "static") == 0;
		}
		else if (strcmp(key, "kafka") == 0)
		{
			JsonbIterator *it2;
			JsonbValue	k2,
						v2;
			JsonbIteratorToken tok2;

			if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"kafka\" must be an object of librdkafka properties"),
						 errhint("For example {\"session.timeout.ms\": \"10000\"}.")));
			it2 = JsonbIteratorInit(v.val.binary.data);
			while ((tok2 = JsonbIteratorNext(&it2, &k2, true)) != WJB_DONE)
			{
				sr_kv	   *kv;

				if (tok2 != WJB_KEY)
					continue;
				kv = palloc(sizeof(sr_kv));
				kv->name = pnstrdup(k2.val.string.val, k2.val.string.len);
				JsonbIteratorNext(&it2, &v2, true);
				kv->value = sr_jsonb_scalar_text(&v2);
				if (kv->value == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("librdkafka property \"%s\" must be a string, number or boolean", kv->name),
							 errhint("librdkafka takes every property value as a string.")));
				sr_check_kafka_property(kv->name, kv->value, "stream option \"kafka\"");
				def->kafka_props = lappend(def->kafka_props, kv);
			}
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown stream option \"%s\"", key),
					 errhint("Valid options are bootstrap_servers, eventstream_type, default_queue, keep_body, assignment and kafka.")));
	}
	if (def->default_queue == NULL)
		def->default_queue = pstrdup(sr_default_queue_for(def->eventstream_type));
}

/*
 * The queue of a job whose message names none, by eventstream type: the
 * queues Sentry's post_process_group runs on for each stream.
 */
const char *
sr_default_queue_for(const char *eventstream_type)
{
	if (strcmp(eventstream_type, "transaction") == 0)
		return "post_process_transactions";
	if (strcmp(eventstream_type, "generic") == 0)
		return "post_process_issue_platform";
	return "post_process_errors";
}

/*
 * librdkafka properties that only a superuser may set in a stream's options:
 * those that carry credentials, choose how they are sent (security.protocol,
 * sasl.*, ssl.*), or name files, commands or libraries that librdkafka
 * reads, runs or loads (ssl.*.location, sasl.kerberos.kinit.cmd,
 * plugin.library.paths, ...): in a worker, a command or library runs as the
 * server's operating-system user.
 */
static bool
sr_property_is_restricted(const char *name)
{
	size_t		len = strlen(name);

#define SR_ENDS_WITH(suffix) (len >= strlen(suffix) && strcmp(name + len - strlen(suffix), suffix) == 0)
	return sr_property_is_secret(name) ||
		strstr(name, "sasl") != NULL || strstr(name, "ssl") != NULL ||
		strncmp(name, "https.", 6) == 0 || strstr(name, "plugin") != NULL ||
		strstr(name, "interceptor") != NULL ||
		strcmp(name, "security.protocol") == 0 ||
		SR_ENDS_WITH(".location") || SR_ENDS_WITH(".cmd") || SR_ENDS_WITH(".paths") ||
		SR_ENDS_WITH(".pem") || SR_ENDS_WITH(".keytab") || SR_ENDS_WITH(".engine.id");
#undef SR_ENDS_WITH
}

/* Is the role that called us (outside SECURITY DEFINER functions) a superuser? */
static bool
sr_outer_user_is_superuser(void)
{
	return superuser_arg(GetOuterUserId());
}

Datum
sr_caller_is_superuser(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(sr_outer_user_is_superuser());
}

/*
 * Options that a non-superuser (sentry_relay_admin) may not write: a
 * bootstrap_servers of its own, which would send the credentials of
 * sentry_relay.kafka_properties to servers of its choosing, and the
 * restricted librdkafka properties.
 */
Datum
sr_check_option_privileges(PG_FUNCTION_ARGS)
{
	Jsonb	   *options = PG_GETARG_JSONB_P(0);
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	if (sr_outer_user_is_superuser() || !JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		PG_RETURN_VOID();
	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &v, true);
		if (k.val.string.len == strlen("bootstrap_servers") &&
			strncmp(k.val.string.val, "bootstrap_servers", k.val.string.len) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only a superuser can set the option \"bootstrap_servers\" of a stream"),
					 errdetail("The workers would send the credentials of sentry_relay.kafka_properties to the servers it names."),
					 errhint("Leave it out to use sentry_relay.bootstrap_servers, or ask a superuser to set it.")));
		if (k.val.string.len == strlen("kafka") &&
			strncmp(k.val.string.val, "kafka", k.val.string.len) == 0 &&
			v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
		{
			JsonbIterator *it2 = JsonbIteratorInit(v.val.binary.data);
			JsonbValue	k2,
						v2;
			JsonbIteratorToken tok2;

			while ((tok2 = JsonbIteratorNext(&it2, &k2, true)) != WJB_DONE)
			{
				char	   *name;

				if (tok2 != WJB_KEY)
					continue;
				JsonbIteratorNext(&it2, &v2, true);
				name = pnstrdup(k2.val.string.val, k2.val.string.len);
				if (sr_property_is_restricted(name))
					ereport(ERROR,
							(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							 errmsg("only a superuser can set the librdkafka property \"%s\" of a stream", name),
							 errdetail("Properties that carry credentials, choose how they are sent, or name files, commands or libraries are reserved to superusers."),
							 errhint("Ask a superuser to set it in the stream's options or in sentry_relay.kafka_properties.")));
			}
		}
	}
	PG_RETURN_VOID();
}

/*
 * text from a C string that may come from librdkafka or a broker and may
 * have been cut inside a multibyte character: invalid bytes become '?'.
 */
static Datum
sr_safe_text(const char *s)
{
	int			enc = GetDatabaseEncoding();
	int			len = strlen(s);
	char	   *out = pstrdup(s);

	for (int i = 0; i < len;)
	{
		int			l = pg_encoding_verifymbchar(enc, out + i, len - i);

		if (l > 0)
			i += l;
		else
			out[i++] = '?';
	}
	return CStringGetTextDatum(out);
}

Datum
sr_validate_options(PG_FUNCTION_ARGS)
{
	sr_stream_def def;

	sr_parse_options(PG_GETARG_JSONB_P(0), &def);
	PG_RETURN_VOID();
}

/*
 * A stream function ran in a server that does not preload the library: the
 * change is stored, and nothing relays it.
 */
static void
sr_warn_not_preloaded(void)
{
	if (sr_shmem() != NULL)
		return;
	ereport(WARNING,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("sentry_relay is not loaded via shared_preload_libraries: no relay worker runs"),
			 errhint("Add sentry_relay to shared_preload_libraries in postgresql.conf and restart PostgreSQL.")));
}

Datum
sr_wake_launcher(PG_FUNCTION_ARGS)
{
	sr_warn_not_preloaded();
	sr_request_launcher_wake();
	PG_RETURN_VOID();
}

Datum
sr_wake_stream(PG_FUNCTION_ARGS)
{
	sr_warn_not_preloaded();
	sr_request_stream_wake(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

#define SR_STATUS_NATTS (16 + SR_NFAULTS)

/* One row per running worker, from shared memory. */
Datum
sr_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			natts;

	InitMaterializedSRF(fcinfo, 0);
	if (sr_shmem() == NULL)
		PG_RETURN_VOID();
	/*
	 * 0.1.0 declares the first 14 columns only; 0.2.0 adds the faults, 0.4.0
	 * the insert paths
	 */
	natts = rsinfo->setDesc->natts;
	if (natts != 14 && natts != 14 + SR_NFAULTS && natts != SR_STATUS_NATTS)
		elog(ERROR, "sentry_relay._worker_status() is declared with %d columns, not %d",
			 natts, SR_STATUS_NATTS);

	LWLockAcquire(sr_shmem()->lock, LW_SHARED);
	for (int i = 0; i < sr_shmem()->nslots; i++)
	{
		sr_worker_slot *s = &sr_shmem()->slots[i];
		Datum		values[SR_STATUS_NATTS];
		bool		nulls[SR_STATUS_NATTS] = {0};
		Datum	   *parts;

		if (!s->in_use)
			continue;
		values[0] = Int32GetDatum(s->pid);
		nulls[0] = s->pid == 0;
		values[1] = CStringGetTextDatum(s->stream);
		values[2] = Int32GetDatum(s->worker_index);
		values[3] = CStringGetTextDatum(s->status[0] ? s->status : "starting");
		parts = palloc(sizeof(Datum) * Max(s->npartitions, 1));
		for (int p = 0; p < s->npartitions; p++)
			parts[p] = Int32GetDatum(s->partitions[p]);
		values[4] = PointerGetDatum(construct_array(parts, s->npartitions, INT4OID, 4, true, TYPALIGN_INT));
		values[5] = Int64GetDatum((int64) s->messages);
		values[6] = Int64GetDatum((int64) s->jobs);
		values[7] = Int64GetDatum((int64) s->skipped);
		values[8] = Int64GetDatum((int64) s->dead_letters);
		values[9] = Int64GetDatum((int64) s->batches);
		values[10] = sr_safe_text(s->last_error);
		nulls[10] = s->last_error[0] == '\0';
		values[11] = TimestampTzGetDatum(s->last_error_at);
		nulls[11] = s->last_error_at == 0;
		values[12] = TimestampTzGetDatum(s->started_at);
		nulls[12] = s->started_at == 0;
		values[13] = Int32GetDatum(s->restarts);
		/* the fault counters, when the SQL declaration has them (0.2.0) */
		for (int f = 0; f < SR_NFAULTS; f++)
			values[14 + f] = Int64GetDatum((int64) s->faults[f]);
		values[14 + SR_NFAULTS] = Int64GetDatum((int64) s->direct_inserts);
		values[15 + SR_NFAULTS] = Int64GetDatum((int64) s->copy_inserts);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(sr_shmem()->lock);
	PG_RETURN_VOID();
}
