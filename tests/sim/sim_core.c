/* sim_core.c - the simulator's random stream, hashing and failure report. */
#include <stdarg.h>
#include <stdio.h>

#include "sim.h"

uint64_t sim_rand(struct sim *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t sim_below(struct sim *s, uint64_t n)
{
	return n == 0 ? 0 : sim_rand(s) % n;
}

int sim_chance_pm(struct sim *s, uint32_t per_mille)
{
	return sim_below(s, 1000) < per_mille;
}

/* Records the first violation; the run stops at the end of the step. */
void sim_fail(struct sim *s, const char *fmt, ...)
{
	if (s->failed)
		return;
	s->failed = 1;
	int n = snprintf(s->failure, sizeof(s->failure),
	                 "step %llu: ", (unsigned long long)s->now);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->failure + n, sizeof(s->failure) - (size_t)n, fmt, ap);
	va_end(ap);
}

uint64_t sim_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 33);
}

uint64_t sim_entry_hash(const struct rep_entry *e)
{
	uint64_t h = sim_mix(e->term, e->type);
	for (size_t i = 0; i < e->len; i++)
		h = sim_mix(h, e->data[i]);
	return sim_mix(h, e->len);
}
