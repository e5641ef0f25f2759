/* output.c: how the command line shows logs, progress and stage lines (tty, plain, JSON). */
#include <stdarg.h>

#include "cli.h"
#include "util/json.h"

static void clear_bar(struct cli *cli)
{
	if (cli->bar_active) {
		fputs("\r\033[K", stderr);
		cli->bar_active = 0;
	}
}

void cli_message(struct cli *cli, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&cli->out_lock);
	clear_bar(cli);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&cli->out_lock);
}

static void json_event(struct cli *cli, const char *event, const char *role, const char *stage,
                       const char *state, double seconds, const char *msg)
{
	struct strbuf sb = STRBUF_INIT;
	struct json j;
	json_init(&j, &sb, 0);
	json_obj_begin(&j, NULL);
	json_str(&j, "event", event);
	if (role)
		json_str(&j, "role", role);
	if (stage)
		json_str(&j, "stage", stage);
	if (state)
		json_str(&j, "state", state);
	if (seconds >= 0)
		json_num(&j, "seconds", seconds);
	if (msg)
		json_str(&j, "message", msg);
	json_obj_end(&j);
	pthread_mutex_lock(&cli->out_lock);
	printf("%s\n", sb_str(&sb));
	pthread_mutex_unlock(&cli->out_lock);
	sb_release(&sb);
}

static void on_log(struct ib_ctx *ctx, enum ib_log_level lvl, const char *msg, void *data)
{
	struct cli *cli = data;
	int need = lvl == IB_LOG_ERROR ? 0 : lvl == IB_LOG_WARN ? 1 : lvl == IB_LOG_INFO ? 2 : 3;
	if (cli->verbosity < need)
		return;
	static const char *const names[] = {"error", "warning", "info", "debug"};
	if (cli->json && lvl <= IB_LOG_WARN)
		json_event(cli, "log", ctx->label, NULL, names[lvl], -1, msg);
	if (ctx->label)
		cli_message(cli, "imgbuild: %s: %s%s%s", ctx->label,
		            lvl <= IB_LOG_WARN ? names[lvl] : "", lvl <= IB_LOG_WARN ? ": " : "",
		            msg);
	else
		cli_message(cli, "imgbuild: %s%s%s", lvl <= IB_LOG_WARN ? names[lvl] : "",
		            lvl <= IB_LOG_WARN ? ": " : "", msg);
}

static void on_stage(struct ib_ctx *ctx, const char *stage, int end, double seconds, void *data)
{
	struct cli *cli = data;
	if (cli->json) {
		json_event(cli, "stage", ctx->label, stage, end ? "done" : "start",
		           end ? seconds : -1, NULL);
		return;
	}
	if (cli->verbosity < 1)
		return;
	if (end)
		cli_message(cli, "imgbuild: %-10s %-9s done in %.1fs", ctx->label ? ctx->label : "",
		            stage, seconds);
	else if (!cli->tty)
		cli_message(cli, "imgbuild: %-10s %-9s ...", ctx->label ? ctx->label : "", stage);
}

/* Only on a terminal: one line redrawn in place. */
static void on_progress(struct ib_ctx *ctx, const char *stage, uint64_t done, uint64_t total,
                        void *data)
{
	struct cli *cli = data;
	if (!cli->tty || cli->json || cli->verbosity < 1)
		return;
	pthread_mutex_lock(&cli->out_lock);
	if (total > 0) {
		int width = 30;
		int fill = (int)((double)done / (double)total * width);
		if (fill > width)
			fill = width;
		fprintf(stderr, "\r\033[K%-10s %-9s [%.*s%*s] %3d%%", ctx->label ? ctx->label : "",
		        stage, fill, "##############################", width - fill, "",
		        (int)((double)done * 100 / (double)total));
	} else {
		static const char spin[] = "|/-\\";
		fprintf(stderr, "\r\033[K%-10s %-9s %c %llu", ctx->label ? ctx->label : "", stage,
		        spin[done % 4], (unsigned long long)done);
	}
	cli->bar_active = 1;
	pthread_mutex_unlock(&cli->out_lock);
}

void cli_install_callbacks(struct cli *cli)
{
	cli->tty = isatty(2) && getenv("TERM") && !streq(getenv("TERM"), "dumb");
	cli->ctx.log = on_log;
	cli->ctx.stage = on_stage;
	cli->ctx.progress = on_progress;
	cli->ctx.cb_data = cli;
}
