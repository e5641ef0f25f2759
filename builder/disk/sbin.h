/* sbin.h: system tools from /usr/sbin, which an ordinary user's PATH often lacks. */
#pragma once

/* name itself when PATH finds it, else /usr/sbin/name or /sbin/name when that exists,
 * else name (so that the failure names the tool). Caller frees. */
char *ib_sbin_tool(const char *name);
