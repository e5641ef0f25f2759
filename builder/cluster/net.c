/* net.c: IPv4 addresses and networks, parsed strictly (inet_aton takes "10.1" and octal). */
#include "cluster/cluster.h"

int ib_ipv4_parse(const char *s, uint32_t *ret)
{
	uint32_t a = 0;
	const char *p = s;
	for (int i = 0; i < 4; i++) {
		if (i > 0 && *p++ != '.')
			return -1;
		if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
			return -1;
		unsigned v = 0;
		int digits = 0;
		while (*p >= '0' && *p <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(*p++ - '0');
			digits++;
		}
		if (v > 255 || digits > 3)
			return -1;
		a = a << 8 | v;
	}
	if (*p)
		return -1;
	*ret = a;
	return 0;
}

void ib_ipv4_format(uint32_t a, char out[16])
{
	snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static uint32_t mask(unsigned prefix)
{
	return prefix == 0 ? 0 : ~(uint32_t)0 << (32 - prefix);
}

int ib_cidr_parse(const char *s, struct ib_cidr *ret)
{
	const char *slash = strchr(s, '/');
	if (!slash || slash - s > 15 || !slash[1] || strlen(slash + 1) > 2)
		return -1;
	char addr[16];
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	uint32_t a;
	if (ib_ipv4_parse(addr, &a) < 0)
		return -1;
	unsigned prefix = 0;
	for (const char *p = slash + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		prefix = prefix * 10 + (unsigned)(*p - '0');
	}
	if (prefix > 32 || (slash[1] == '0' && slash[2]))
		return -1;
	if (a & ~mask(prefix))
		return -2;
	ret->addr = a;
	ret->prefix = prefix;
	return 0;
}

void ib_cidr_format(const struct ib_cidr *c, char out[19])
{
	char a[16];
	ib_ipv4_format(c->addr, a);
	snprintf(out, 19, "%s/%u", a, c->prefix);
}

int ib_cidr_contains(const struct ib_cidr *c, uint32_t a)
{
	return (a & mask(c->prefix)) == c->addr;
}

int ib_cidr_overlap(const struct ib_cidr *a, const struct ib_cidr *b)
{
	unsigned p = a->prefix < b->prefix ? a->prefix : b->prefix;
	return (a->addr & mask(p)) == (b->addr & mask(p));
}
