/* spec_size.c: human-readable byte sizes ("4G", "512MiB", "1073741824"). */
#include "spec.h"

int ib_parse_size(const char *s, uint64_t *ret)
{
	uint64_t v = 0;
	const char *p = s;

	if (!s || *p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	unsigned shift = 0;
	if (*p) {
		static const char units[] = "KMGT";
		const char *u = strchr(units, *p);
		if (!u)
			return -1;
		shift = 10 * (unsigned)(u - units + 1);
		p++;
		if (!streq(p, "") && !streq(p, "iB") && !streq(p, "B"))
			return -1;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*ret = v << shift;
	return 0;
}
