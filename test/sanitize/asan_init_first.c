/*
 * asan_init_first.c - preloaded after libasan when the extension is built
 * with SANITIZE=address (see test/run-tests.sh).
 *
 * PostgreSQL's binaries are not built with ASan, so libasan is preloaded and
 * initializes lazily, at the first malloc.  On Debian 12 that first malloc
 * comes from a library constructor that holds a glibc lock:
 * libgpg-error's calls bindtextdomain (gettext's state lock) and
 * libp11-kit's calls newlocale (the locale lock).  ASan's initialization then
 * calls dlerror, which takes the same locks again, and the process hangs at
 * start or at exit.  These wrappers make that first malloc happen before
 * the lock is taken.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <locale.h>
#include <stdlib.h>

static void
asan_init_now(void)
{
	void	   *volatile p = malloc(1);

	free(p);
}

char *
bindtextdomain(const char *domainname, const char *dirname)
{
	static char *(*real) (const char *, const char *);

	if (real == NULL)
	{
		asan_init_now();
		real = (char *(*) (const char *, const char *)) dlsym(RTLD_NEXT, "bindtextdomain");
	}
	return real(domainname, dirname);
}

locale_t
newlocale(int category_mask, const char *locale, locale_t base)
{
	static locale_t (*real) (int, const char *, locale_t);

	if (real == NULL)
	{
		asan_init_now();
		real = (locale_t (*) (int, const char *, locale_t)) dlsym(RTLD_NEXT, "newlocale");
	}
	return real(category_mask, locale, base);
}
