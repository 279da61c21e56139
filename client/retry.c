/* retry.c - the client's retry policy, address lists and wire error codes. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora_client.h"

enum lora_retry lora_retry_classify(int err, int sent)
{
	switch (err) {
	case LORA_OK:
		return LORA_RETRY_NO;
	case LORA_EUNAVAILABLE:
	case LORA_ENOTLEADER:
		/* The node says it did not execute the request. */
		return LORA_RETRY_SAFE;
	case LORA_EUNKNOWN_OUTCOME:
		return LORA_RETRY_SAME_ID;
	case LORA_ECLOSED:
	case LORA_ETIMEOUT:
		/* Transport failures: before sending nothing happened; after
		 * sending the node may have executed it. */
		return sent ? LORA_RETRY_SAME_ID : LORA_RETRY_SAFE;
	default:
		return LORA_RETRY_NO;
	}
}

/* xorshift64*: small, seeded, deterministic. */
static uint64_t next_rand(uint64_t *seed)
{
	uint64_t x = *seed ? *seed : 0x9E3779B97F4A7C15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*seed = x;
	return x * 0x2545F4914F6CDD1Dull;
}

int lora_retry_backoff_ms(int attempt, int min_ms, int max_ms, uint64_t *seed)
{
	LORA_ASSERT(seed != NULL);
	if (min_ms < 1)
		min_ms = 1;
	if (max_ms < min_ms)
		max_ms = min_ms;
	long full = min_ms;
	for (int i = 1; i < attempt && full < max_ms; i++)
		full *= 2;
	if (full > max_ms)
		full = max_ms;
	long half = full / 2;
	long span = full - half + 1;
	return (int)(half + (long)(next_rand(seed) % (uint64_t)span));
}

int lora_err_from_code(const char *code)
{
	if (code == NULL)
		return LORA_EINTERNAL;
	/* LORA_OK is not an error; several enum values share a code, the first
	 * one wins. */
	for (int e = 1; e < LORA_ERR_COUNT; e++) {
		if (strcmp(lora_err_code(e), code) == 0)
			return e;
	}
	return LORA_EINTERNAL;
}

/* Validates one "host:port" entry [s, s+len) and writes its tcp:// URL. */
static int parse_one(const char *s, size_t len, char *out, char *errmsg)
{
	if (len >= 6 && strncmp(s, "tcp://", 6) == 0)
		s += 6, len -= 6;
	const char *colon = NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == ':')
			colon = s + i;
	}
	if (colon == NULL || colon == s || colon + 1 == s + len)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "address '%.*s': want host:port", (int)len, s);
	long port = 0;
	for (const char *p = colon + 1; p < s + len; p++) {
		if (!isdigit((unsigned char)*p) || port > 65535)
			return lora_errf(LORA_EINVAL, errmsg,
			                 "address '%.*s': bad port", (int)len,
			                 s);
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "address '%.*s': port out of range", (int)len,
		                 s);
	if (len + 7 > LORA_CLIENT_ADDR_BYTES)
		return lora_errf(LORA_EINVAL, errmsg, "address too long");
	snprintf(out, LORA_CLIENT_ADDR_BYTES, "tcp://%.*s", (int)len, s);
	return 0;
}

int lora_client_parse_addresses(const char *list,
                                char out[][LORA_CLIENT_ADDR_BYTES], size_t max,
                                size_t *n, char *errmsg)
{
	*n = 0;
	if (list == NULL)
		return lora_errf(LORA_EINVAL, errmsg, "no addresses");
	const char *p = list;
	while (*p) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == 0)
			break;
		const char *end = p;
		while (*end && *end != ',' && !isspace((unsigned char)*end))
			end++;
		if (*n == max)
			return lora_errf(LORA_EINVAL, errmsg,
			                 "more than %zu addresses", max);
		int rv = parse_one(p, (size_t)(end - p), out[*n], errmsg);
		if (rv)
			return rv;
		(*n)++;
		p = end;
	}
	if (*n == 0)
		return lora_errf(LORA_EINVAL, errmsg, "no addresses");
	return 0;
}
