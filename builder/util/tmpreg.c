/* tmpreg.c: the registry of temporary paths removed on interrupt. */
#include "tmpreg.h"

#include <pthread.h>

#include "fs.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t commit = PTHREAD_MUTEX_INITIALIZER;
static struct strv registered;

void ib_tmp_register(const char *path)
{
	pthread_mutex_lock(&reg_lock);
	strv_push(&registered, path);
	pthread_mutex_unlock(&reg_lock);
}

void ib_tmp_unregister(const char *path)
{
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < registered.n; i++) {
		if (streq(registered.v[i], path)) {
			free(registered.v[i]);
			registered.v[i] = registered.v[--registered.n];
			registered.v[registered.n] = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

void ib_tmp_cleanup_all(void)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < registered.n; i++)
		ib_rm_rf(&ctx, registered.v[i]);
	strv_release(&registered);
	pthread_mutex_unlock(&reg_lock);
}

void ib_commit_lock(void)
{
	pthread_mutex_lock(&commit);
}
void ib_commit_unlock(void)
{
	pthread_mutex_unlock(&commit);
}
