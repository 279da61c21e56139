/* temporal.c - date, time, localtime, datetime, localdatetime and
 * duration: construction from maps and ISO 8601 strings, selection from
 * other temporals, named time zones (TZif files from the system zoneinfo
 * database), accessors, arithmetic, duration.between, ISO formatting.
 *
 * Representation (struct vtemp): dates count days from 1970-01-01; times
 * count nanoseconds of the (local) day; zoned values keep their LOCAL
 * wall-clock date and time plus the UTC offset in seconds and, when
 * given, the zone name. Durations keep months, days, seconds and
 * nanoseconds (0 <= nanos < 1e9) apart, as Cypher does. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qint.h"

#define NS                1000000000LL
#define DAY_NS            (86400LL * NS)
#define TZ_ZONES_MAX      2048 /* tzdata has under 1,000 files */
#define TZ_FILE_BYTES_MAX (256u << 10)
#define TZ_DIR            "/usr/share/zoneinfo/"

enum { K_DATE = 0, K_LTIME, K_TIME, K_LDT, K_DT, K_DUR };

/* Years as Cypher has them: +-999,999,999 (the day arithmetic stays well
 * inside int64_t). */
#define TM_YEAR_MAX        999999999LL
#define TM_YEAR_DIGITS_MAX 9

/* ---- civil calendar ---------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = yoe + era * 400;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp + (mp < 10 ? 3 : -9);
	*y = yy + (*m <= 2);
}

static int is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_len(int64_t y, int64_t m)
{
	static const int ml[] = {31, 28, 31, 30, 31, 30,
	                         31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : ml[m - 1];
}

static int64_t iso_dow(int64_t days) /* 1 = Monday */
{
	return ((days % 7) + 7 + 3) % 7 + 1;
}

static int64_t week1_monday(int64_t y)
{
	int64_t j4 = days_from_civil(y, 1, 4);
	return j4 - (iso_dow(j4) - 1);
}

static void iso_week(int64_t days, int64_t *wy, int64_t *w)
{
	int64_t y, m, d;
	civil_from_days(days, &y, &m, &d);
	int64_t start = week1_monday(y + 1);
	if (days >= start)
		y++;
	else {
		start = week1_monday(y);
		if (days < start) {
			y--;
			start = week1_monday(y);
		}
	}
	*wy = y;
	*w = (days - start) / 7 + 1;
}

static int64_t floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static int64_t floormod(int64_t a, int64_t b)
{
	return a - floordiv(a, b) * b;
}

/* ---- time zones -------------------------------------------------------- */

struct tzinfo {
	char name[64];
	int64_t *trans; /* UTC seconds */
	uint8_t *idx;
	int32_t *offs;
	size_t ntrans, ntypes;
	int32_t initial;
};

static struct tzinfo *zones[TZ_ZONES_MAX];
static size_t nzones;
static pthread_mutex_t tz_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	if (n == 4)
		return (int32_t)(uint32_t)v;
	return (int64_t)v;
}

static void tz_free(struct tzinfo *z)
{
	lora_free(z->trans);
	lora_free(z->idx);
	lora_free(z->offs);
	lora_free(z);
}

static struct tzinfo *tz_parse(const char *name, const uint8_t *b, size_t n,
                               int *oom)
{
	*oom = 0;
	if (n < 44 || memcmp(b, "TZif", 4))
		return NULL;
	int v2 = b[4] >= '2';
	size_t isut = (size_t)be(b + 20, 4), isstd = (size_t)be(b + 24, 4),
	       leap = (size_t)be(b + 28, 4), tc = (size_t)be(b + 32, 4),
	       ty = (size_t)be(b + 36, 4), ch = (size_t)be(b + 40, 4);
	int w = 4;
	const uint8_t *p = b + 44;
	if (v2) {
		p += tc * 4 + tc + ty * 6 + ch + leap * 8 + isstd + isut;
		if ((size_t)(p - b) + 44 > n)
			return NULL;
		isut = (size_t)be(p + 20, 4);
		isstd = (size_t)be(p + 24, 4);
		leap = (size_t)be(p + 28, 4);
		tc = (size_t)be(p + 32, 4);
		ty = (size_t)be(p + 36, 4);
		ch = (size_t)be(p + 40, 4);
		p += 44;
		w = 8;
	}
	if ((size_t)(p - b) + tc * (size_t)w + tc + ty * 6 > n || ty == 0)
		return NULL;
	struct tzinfo *z = lora_calloc(1, sizeof(*z));
	if (!z) {
		*oom = 1;
		return NULL;
	}
	snprintf(z->name, sizeof z->name, "%s", name);
	z->trans = lora_calloc(tc + 1, sizeof(int64_t));
	z->idx = lora_calloc(tc + 1, 1);
	z->offs = lora_calloc(ty + 1, sizeof(int32_t));
	if (!z->trans || !z->idx || !z->offs) {
		tz_free(z);
		*oom = 1;
		return NULL;
	}
	for (size_t i = 0; i < tc; i++)
		z->trans[i] = be(p + i * (size_t)w, w);
	p += tc * (size_t)w;
	for (size_t i = 0; i < tc; i++)
		z->idx[i] = p[i] < ty ? p[i] : 0;
	p += tc;
	for (size_t i = 0; i < ty; i++)
		z->offs[i] = (int32_t)be(p + i * 6, 4);
	z->ntrans = tc;
	z->ntypes = ty;
	z->initial = z->offs[0];
	return z;
}

/* The zone named `name`, parsed once and kept for the life of the process
 * (zones are few and small); NULL with *why set when it cannot be had. */
/* An IANA zone name: components of letters, digits, '_', '+' and '-'
 * joined by single '/' (so one file has one name: no "./", "//", "..",
 * and not the posix/ and right/ copies of the tree). */
static int tz_name_ok(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > 60 || !strncmp(name, "posix/", 6) ||
	    !strncmp(name, "right/", 6))
		return 0;
	int comp = 0;
	for (const char *p = name; *p; p++) {
		if (*p == '/') {
			if (comp == 0)
				return 0;
			comp = 0;
		} else if (isalnum((unsigned char)*p) || *p == '_' ||
		           *p == '+' || *p == '-') {
			comp++;
		} else {
			return 0;
		}
	}
	return comp > 0;
}

/* The zone named `name`, parsed once and kept for the life of the process
 * (zones are few and small); NULL with *code: LORA_EINVAL (no such zone),
 * LORA_ELIMIT (TZ_ZONES_MAX in use) or LORA_ENOMEM. */
static struct tzinfo *tz_load(const char *name, int *code)
{
	*code = LORA_EINVAL;
	if (!tz_name_ok(name))
		return NULL;
	pthread_mutex_lock(&tz_mu);
	for (size_t i = 0; i < nzones; i++)
		if (!strcmp(zones[i]->name, name)) {
			pthread_mutex_unlock(&tz_mu);
			return zones[i];
		}
	struct tzinfo *z = NULL;
	if (nzones == TZ_ZONES_MAX) {
		*code = LORA_ELIMIT;
		goto out;
	}
	char path[128];
	snprintf(path, sizeof path, TZ_DIR "%s", name);
	FILE *f = fopen(path, "rb");
	if (!f)
		goto out;
	uint8_t *buf = lora_malloc(TZ_FILE_BYTES_MAX);
	int oom = buf == NULL;
	if (buf) {
		size_t n = fread(buf, 1, TZ_FILE_BYTES_MAX, f);
		z = tz_parse(name, buf, n, &oom);
		lora_free(buf);
	}
	if (oom)
		*code = LORA_ENOMEM;
	fclose(f);
	if (z)
		zones[nzones++] = z;
out:
	pthread_mutex_unlock(&tz_mu);
	return z;
}

/* tz_load, or the statement's error naming the zone. */
static struct tzinfo *tz_need(struct qctx *c, const char *name)
{
	int code;
	struct tzinfo *z = tz_load(name, &code);
	if (z)
		return z;
	if (code == LORA_ELIMIT)
		qerr(c, code, "more than %d distinct time zones in use",
		     TZ_ZONES_MAX);
	if (code == LORA_ENOMEM)
		qerr(c, code, "out of memory loading time zone %s", name);
	qerr(c, LORA_EINVAL, "InvalidArgumentValue: unknown time zone %s",
	     name);
}

static int32_t tz_offset_utc(struct tzinfo *z, int64_t utc)
{
	if (!z->ntrans || utc < z->trans[0])
		return z->initial;
	size_t lo = 0, hi = z->ntrans;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (z->trans[mid] <= utc)
			lo = mid;
		else
			hi = mid;
	}
	return z->offs[z->idx[lo]];
}

static int32_t tz_offset_local(struct tzinfo *z, int64_t local)
{
	int32_t off = tz_offset_utc(z, local);
	int32_t off2 = tz_offset_utc(z, local - off);
	if (off2 != off) {
		int32_t off3 = tz_offset_utc(z, local - off2);
		return off3 == off2 ? off2 : off;
	}
	return off;
}

/* ---- helpers ----------------------------------------------------------- */

static struct val mk(struct qctx *c, int kind)
{
	struct val v = {.t = V_TEMPORAL};
	v.u.tm = ar_alloc(c, sizeof(struct vtemp));
	v.u.tm->kind = kind;
	return v;
}

static _Noreturn void bad(struct qctx *c, const char *what, const char *s)
{
	qerr(c, LORA_EINVAL, "InvalidArgumentValue: cannot parse %s from '%s'",
	     what, s);
}

/* 0 for a non-digit or a number past INT64_MAX (found by fuzz_cypher:
 * date('2020666...') overflowed). */
static int digits(const char *s, int n, int64_t *out)
{
	int64_t v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]) ||
		    v > (INT64_MAX - (s[i] - '0')) / 10)
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 1;
}

static int count_digits(const char *s)
{
	int n = 0;
	while (isdigit((unsigned char)s[n]))
		n++;
	return n;
}

/* zone: "Z", "+01:00", "+0100", "+01", "[Europe/Stockholm]" */
static const char *parse_zone(struct qctx *c, const char *s, int *has,
                              int32_t *off, const char **zone)
{
	*has = 0;
	*zone = NULL;
	if (*s == 'Z') {
		*has = 1;
		*off = 0;
		s++;
	} else if (*s == '+' || *s == '-') {
		int neg = *s == '-';
		int64_t h = 0, m = 0, sec = 0;
		s++;
		if (!digits(s, 2, &h))
			return NULL;
		s += 2;
		if (*s == ':')
			s++;
		if (digits(s, 2, &m)) {
			s += 2;
			if (*s == ':')
				s++;
			if (digits(s, 2, &sec))
				s += 2;
		}
		*has = 1;
		*off = (int32_t)((h * 3600 + m * 60 + sec) * (neg ? -1 : 1));
	}
	if (*s == '[') {
		const char *e = strchr(s, ']');
		if (!e)
			return NULL;
		*zone = ar_strndup(c, s + 1, (size_t)(e - s - 1));
		s = e + 1;
	}
	return s;
}

static const char *parse_date_str(const char *s, int64_t *days)
{
	int64_t y = 0, m = 1, d = 1;
	int n = count_digits(s);
	int sign = 1;
	if (*s == '+' || *s == '-') {
		sign = *s == '-' ? -1 : 1;
		s++;
		n = count_digits(s);
	}
	if (n < 4)
		return NULL;
	int yl = n == 4 || n > 8 ? (n > 8 ? n : 4) : 4;
	if (n == 5 || n == 6 || n == 7 || n == 8)
		yl = 4;
	if (yl > TM_YEAR_DIGITS_MAX || !digits(s, yl, &y))
		return NULL;
	y *= sign;
	s += yl;
	int dash = *s == '-';
	if (dash)
		s++;
	if (*s == 'W') {
		int64_t w = 1, dow = 1;
		s++;
		if (!digits(s, 2, &w))
			return NULL;
		s += 2;
		if (dash && *s == '-')
			s++;
		if (isdigit((unsigned char)*s)) {
			digits(s, 1, &dow);
			s++;
		}
		*days = week1_monday(y) + (w - 1) * 7 + (dow - 1);
		return s;
	}
	int k = count_digits(s);
	if (k == 3 || (k == 7 && !dash)) {
		int64_t od = 1;
		digits(s, 3, &od);
		*days = days_from_civil(y, 1, 1) + od - 1;
		return s + 3;
	}
	if (k >= 2) {
		digits(s, 2, &m);
		s += 2;
		if (dash && *s == '-')
			s++;
		if (count_digits(s) >= 2) {
			digits(s, 2, &d);
			s += 2;
		}
	}
	if (m < 1 || m > 12 || d < 1 || d > month_len(y, m))
		return NULL;
	*days = days_from_civil(y, m, d);
	return s;
}

static const char *parse_time_str(const char *s, int64_t *nanos)
{
	int64_t h = 0, m = 0, sec = 0, frac = 0;
	if (!digits(s, 2, &h))
		return NULL;
	s += 2;
	int colon = *s == ':';
	if (colon)
		s++;
	if (digits(s, 2, &m)) {
		s += 2;
		if (colon && *s == ':')
			s++;
		if (digits(s, 2, &sec)) {
			s += 2;
			if (*s == '.' || *s == ',') {
				s++;
				int n = 0;
				while (isdigit((unsigned char)*s)) {
					if (n < 9) {
						frac = frac * 10 + (*s - '0');
						n++;
					}
					s++;
				}
				while (n++ < 9)
					frac *= 10;
			}
		}
	}
	if (h > 23 || m > 59 || sec > 59)
		return NULL;
	*nanos = ((h * 60 + m) * 60 + sec) * NS + frac;
	return s;
}

static void set_zone(struct qctx *c, struct vtemp *t, int has, int32_t off,
                     const char *zone)
{
	if (zone) {
		struct tzinfo *z = tz_need(c, zone);
		t->zone = zone;
		if (!has)
			off = tz_offset_local(z, t->days * 86400 +
			                             floordiv(t->nanos, NS));
	}
	t->offset = off;
}

static struct val from_string(struct qctx *c, int kind, const char *s)
{
	struct val v = mk(c, kind);
	struct vtemp *t = v.u.tm;
	const char *p = s;
	if (kind == K_DATE || kind == K_LDT || kind == K_DT) {
		p = parse_date_str(p, &t->days);
		if (!p)
			bad(c, "a date", s);
		if (kind != K_DATE && *p == 'T') {
			p = parse_time_str(p + 1, &t->nanos);
			if (!p)
				bad(c, "a date time", s);
		}
	} else {
		p = parse_time_str(p, &t->nanos);
		if (!p)
			bad(c, "a time", s);
	}
	int has = 0;
	int32_t off = 0;
	const char *zone = NULL;
	if (kind == K_TIME || kind == K_DT) {
		p = parse_zone(c, p, &has, &off, &zone);
		if (!p)
			bad(c, "a time zone", s);
		set_zone(c, t, has, off, zone);
	} else {
		const char *q = parse_zone(c, p, &has, &off, &zone);
		if (q)
			p = q;
	}
	if (*p)
		bad(c, "a temporal value", s);
	return v;
}

/* ---- durations --------------------------------------------------------- */

/* A duration's amounts (in any unit) stay within this, so that the
 * seconds they make fit int64_t: casting a larger double is undefined
 * behaviour (fuzz_cypher: duration('P111...1M')). */
#define TM_DUR_AMOUNT_MAX 1e15

static double dur_amount(struct qctx *c, double x)
{
	if (!(x >= -TM_DUR_AMOUNT_MAX && x <= TM_DUR_AMOUNT_MAX))
		qerr(c, LORA_EARITH,
		     "ArithmeticError: a duration amount is out of range");
	return x;
}

static void dur_norm(struct vtemp *t)
{
	t->secs += floordiv(t->dnanos, NS);
	t->dnanos = floormod(t->dnanos, NS);
}

/* add a (possibly fractional) amount of `unit_s` seconds */
static void dur_add_secs(struct vtemp *t, double amount, double unit_s)
{
	long double total = (long double)amount * unit_s;
	int64_t whole = (int64_t)truncl(total);
	int64_t ns = (int64_t)llroundl((total - whole) * NS);
	t->secs += whole;
	t->dnanos += ns;
}

static void dur_add_months(struct vtemp *t, double m)
{
	int64_t whole = (int64_t)trunc(m);
	t->months += whole;
	double frac = m - (double)whole;
	if (frac != 0) {
		double days = frac * 30.436875;
		int64_t wd = (int64_t)trunc(days);
		t->ddays += wd;
		dur_add_secs(t, days - (double)wd, 86400);
	}
}

static void dur_add_days(struct vtemp *t, double d)
{
	int64_t whole = (int64_t)trunc(d);
	t->ddays += whole;
	dur_add_secs(t, d - (double)whole, 86400);
}

static struct val dur_from_string(struct qctx *c, const char *s)
{
	struct val v = mk(c, K_DUR);
	struct vtemp *t = v.u.tm;
	const char *p = s;
	int neg = 0;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (*p++ != 'P')
		bad(c, "a duration", s);
	/* alternative format P2012-02-02T14:37:21.545 */
	if (count_digits(p) == 4 && p[4] == '-') {
		int64_t y = 0, mo = 0, d = 0, ns = 0;
		digits(p, 4, &y);
		digits(p + 5, 2, &mo);
		digits(p + 8, 2, &d);
		t->months = y * 12 + mo;
		t->ddays = d;
		if (p[10] == 'T' && parse_time_str(p + 11, &ns)) {
			t->secs = ns / NS;
			t->dnanos = ns % NS;
		}
		return v;
	}
	int in_time = 0;
	while (*p) {
		if (*p == 'T') {
			in_time = 1;
			p++;
			continue;
		}
		char *end;
		double x = strtod(p, &end);
		if (end == p)
			bad(c, "a duration", s);
		x = dur_amount(c, x);
		p = end;
		char u = *p++;
		if (neg)
			x = -x;
		if (!in_time && u == 'Y')
			dur_add_months(t, x * 12);
		else if (!in_time && u == 'M')
			dur_add_months(t, x);
		else if (!in_time && u == 'W')
			dur_add_days(t, x * 7);
		else if (!in_time && u == 'D')
			dur_add_days(t, x);
		else if (in_time && u == 'H')
			dur_add_secs(t, x, 3600);
		else if (in_time && u == 'M')
			dur_add_secs(t, x, 60);
		else if (in_time && u == 'S')
			dur_add_secs(t, x, 1);
		else
			bad(c, "a duration", s);
	}
	dur_norm(t);
	return v;
}

static double num_field(struct qctx *c, struct vmap *m, const char *k, int *has)
{
	struct val *v = vmap_get(m, k);
	if (!v || v->t == V_NULL) {
		*has = 0;
		return 0;
	}
	if (!v_is_num(*v))
		qerr(c, LORA_ETYPE, "InvalidArgumentType: %s must be a number",
		     k);
	*has = 1;
	return v_num(*v);
}

static struct val dur_from_map(struct qctx *c, struct vmap *m)
{
	struct val v = mk(c, K_DUR);
	struct vtemp *t = v.u.tm;
	int h;
	double x;
	if ((x = dur_amount(c, num_field(c, m, "years", &h))), h)
		dur_add_months(t, x * 12);
	if ((x = dur_amount(c, num_field(c, m, "quarters", &h))), h)
		dur_add_months(t, x * 3);
	if ((x = dur_amount(c, num_field(c, m, "months", &h))), h)
		dur_add_months(t, x);
	if ((x = dur_amount(c, num_field(c, m, "weeks", &h))), h)
		dur_add_days(t, x * 7);
	if ((x = dur_amount(c, num_field(c, m, "days", &h))), h)
		dur_add_days(t, x);
	if ((x = dur_amount(c, num_field(c, m, "hours", &h))), h)
		dur_add_secs(t, x, 3600);
	if ((x = dur_amount(c, num_field(c, m, "minutes", &h))), h)
		dur_add_secs(t, x, 60);
	if ((x = dur_amount(c, num_field(c, m, "seconds", &h))), h)
		dur_add_secs(t, x, 1);
	if ((x = dur_amount(c, num_field(c, m, "milliseconds", &h))), h)
		dur_add_secs(t, x, 1e-3);
	if ((x = dur_amount(c, num_field(c, m, "microseconds", &h))), h)
		dur_add_secs(t, x, 1e-6);
	if ((x = dur_amount(c, num_field(c, m, "nanoseconds", &h))), h)
		t->dnanos += (int64_t)x;
	dur_norm(t);
	return v;
}

/* ---- construction from maps -------------------------------------------- */

/* n units (a number, truncated towards zero) plus extra, as nanoseconds:
 * an error past the int64_t range (casting such a double is undefined
 * behaviour). */
static int64_t epoch_ns(struct qctx *c, double n, int64_t unit, int64_t extra)
{
	double ns = n * (double)unit;
	int64_t r;
	if (!(ns > -9.2e18 && ns < 9.2e18) ||
	    __builtin_add_overflow((int64_t)n * unit, extra, &r))
		qerr(c, LORA_EARITH,
		     "ArithmeticError: the epoch time is out of range");
	return r;
}

static int64_t ifield(struct qctx *c, struct vmap *m, const char *k,
                      int64_t def, int *has)
{
	struct val *v = vmap_get(m, k);
	if (!v || v->t == V_NULL) {
		if (has)
			*has = 0;
		return def;
	}
	if (v->t != V_INT)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: %s must be an integer", k);
	if (has)
		*has = 1;
	return v->u.i;
}

static struct vtemp *tm_field(struct vmap *m, const char *k)
{
	struct val *v = vmap_get(m, k);
	return v && v->t == V_TEMPORAL ? v->u.tm : NULL;
}

static int has_date(int k)
{
	return k == K_DATE || k == K_LDT || k == K_DT;
}
static int has_time(int k)
{
	return k == K_LTIME || k == K_TIME || k == K_LDT || k == K_DT;
}
static int zoned(int k)
{
	return k == K_TIME || k == K_DT;
}

/* ifield within [lo, hi] (the calendar's arithmetic stays within
 * int64_t only so: fuzz_cypher found a year of 10^15 overflowing). */
static int64_t ifield_in(struct qctx *c, struct vmap *m, const char *k,
                         int64_t def, int *has, int64_t lo, int64_t hi)
{
	int64_t v = ifield(c, m, k, def, has);
	if (v < lo || v > hi)
		qerr(c, LORA_EINVAL,
		     "InvalidArgumentValue: %s %lld is out of range [%lld, "
		     "%lld]",
		     k, (long long)v, (long long)lo, (long long)hi);
	return v;
}

static int64_t date_from_map(struct qctx *c, struct vmap *m, struct vtemp *base)
{
	int64_t y0 = 1970, m0 = 1, d0 = 1;
	if (base)
		civil_from_days(base->days, &y0, &m0, &d0);
	int hy, hm, hd, hw, ho, hq;
	int64_t y = ifield_in(c, m, "year", y0, &hy, -TM_YEAR_MAX, TM_YEAR_MAX);
	int64_t w = ifield_in(c, m, "week", 1, &hw, 1, 53);
	if (hw) {
		int64_t dow =
		    ifield_in(c, m, "dayOfWeek", base ? iso_dow(base->days) : 1,
		              NULL, 1, 7);
		if (base && !hy) {
			int64_t wy, ww;
			iso_week(base->days, &wy, &ww);
			y = wy;
		}
		return week1_monday(y) + (w - 1) * 7 + (dow - 1);
	}
	int64_t od = ifield_in(c, m, "ordinalDay", 1, &ho, 1, 366);
	if (ho)
		return days_from_civil(y, 1, 1) + od - 1;
	int64_t q = ifield_in(c, m, "quarter", 1, &hq, 1, 4);
	if (hq) {
		int hdq;
		int64_t dq = ifield_in(c, m, "dayOfQuarter", 1, &hdq, 1, 92);
		if (!hdq && base) {
			/* keep the month within the quarter and the day */
			int64_t mo = (q - 1) * 3 + (m0 - 1) % 3 + 1;
			int64_t d =
			    d0 > month_len(y, mo) ? month_len(y, mo) : d0;
			return days_from_civil(y, mo, d);
		}
		return days_from_civil(y, (q - 1) * 3 + 1, 1) + dq - 1;
	}
	int64_t mo = ifield(c, m, "month", base ? m0 : 1, &hm);
	int64_t d = ifield(c, m, "day", base ? d0 : 1, &hd);
	if (mo < 1 || mo > 12 || d < 1 || d > month_len(y, mo))
		qerr(c, LORA_EINVAL, "InvalidArgumentValue: invalid date");
	return days_from_civil(y, mo, d);
}

static int64_t time_from_map(struct qctx *c, struct vmap *m, struct vtemp *base)
{
	int64_t b = base ? base->nanos : 0;
	int64_t h0 = b / (3600 * NS), mi0 = b / (60 * NS) % 60,
	        s0 = b / NS % 60, f0 = b % NS;
	int hh, hmi, hs, hms, hus, hns;
	int64_t h = ifield(c, m, "hour", base ? h0 : 0, &hh);
	int64_t mi = ifield(c, m, "minute", base ? mi0 : 0, &hmi);
	int64_t s = ifield(c, m, "second", base ? s0 : 0, &hs);
	int64_t ms = ifield(c, m, "millisecond", 0, &hms);
	int64_t us = ifield(c, m, "microsecond", 0, &hus);
	int64_t ns = ifield(c, m, "nanosecond", 0, &hns);
	int64_t frac = ms * 1000000 + us * 1000 + ns;
	if (!hms && !hus && !hns)
		frac = base ? f0 : 0;
	if (h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59)
		qerr(c, LORA_EINVAL, "InvalidArgumentValue: invalid time");
	return ((h * 60 + mi) * 60 + s) * NS + frac;
}

static const char *zone_arg(struct qctx *c, struct vmap *m, int *has,
                            int32_t *off)
{
	struct val *tz = vmap_get(m, "timezone");
	*has = 0;
	if (!tz || tz->t == V_NULL)
		return NULL;
	if (tz->t != V_STR)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: timezone must be a "
		     "string");
	const char *zone = NULL;
	const char *p = parse_zone(c, tz->u.s->s, has, off, &zone);
	if (p && !*p && (*has || zone))
		return zone;
	*has = 0;
	return tz->u.s->s; /* a zone name */
}

/* shift a zoned local time to another offset */
static void shift_to(struct vtemp *t, int32_t from, int32_t to)
{
	int64_t n = t->nanos + (int64_t)(to - from) * NS;
	t->days += floordiv(n, DAY_NS);
	t->nanos = floormod(n, DAY_NS);
}

static struct val from_map(struct qctx *c, int kind, struct vmap *m)
{
	if (kind == K_DUR)
		return dur_from_map(c, m);
	struct val v = mk(c, kind);
	struct vtemp *t = v.u.tm;
	struct vtemp *dt = tm_field(m, "datetime");
	struct vtemp *db = dt ? dt : tm_field(m, "date");
	struct vtemp *tb = dt ? dt : tm_field(m, "time");
	int hoff;
	int32_t off = 0;
	const char *zone = zone_arg(c, m, &hoff, &off);
	struct val *es = vmap_get(m, "epochSeconds");
	struct val *em = vmap_get(m, "epochMillis");
	if (es || em) {
		int64_t ns =
		    epoch_ns(c, v_num(es ? *es : *em), es ? NS : 1000000,
		             ifield(c, m, "nanosecond", 0, NULL));
		t->days = floordiv(ns, DAY_NS);
		t->nanos = floormod(ns, DAY_NS);
		if (zone || hoff) {
			int32_t o = off;
			if (zone) {
				struct tzinfo *z = tz_need(c, zone);
				o = tz_offset_utc(z, floordiv(ns, NS));
				t->zone = zone;
			}
			shift_to(t, 0, o);
			t->offset = o;
		}
		return v;
	}
	if (has_date(kind))
		t->days = date_from_map(c, m, db);
	if (has_time(kind))
		t->nanos = tb && !has_time(tb->kind) ? time_from_map(c, m, NULL)
		                                     : time_from_map(c, m, tb);
	if (!zoned(kind))
		return v;
	/* zone: given explicitly, or inherited from the time source */
	struct vtemp *zs = tb && zoned(tb->kind) ? tb : NULL;
	if (zs && (zone || hoff) && has_time(zs->kind) &&
	    !(kind == K_DT && !dt && tm_field(m, "time") == NULL)) {
		/* convert the source instant into the new zone */
		struct vtemp tmp = *t;
		int32_t from = zs->offset;
		int32_t to = off;
		if (zone) {
			struct tzinfo *z = tz_need(c, zone);
			int64_t utc =
			    tmp.days * 86400 + floordiv(tmp.nanos, NS) - from;
			to = tz_offset_utc(z, utc);
			t->zone = zone;
		}
		shift_to(t, from, to);
		if (kind == K_TIME)
			t->days = 0;
		t->offset = to;
		return v;
	}
	if (!zone && !hoff && zs) {
		t->zone = zs->zone;
		t->offset = zs->offset;
		if (zs->zone && kind == K_DT)
			set_zone(c, t, 0, 0, zs->zone);
		return v;
	}
	set_zone(c, t, hoff, off, zone);
	return v;
}

/* select: date(datetime) etc. */
static struct val from_temporal(struct qctx *c, int kind, struct vtemp *s)
{
	struct val v = mk(c, kind);
	struct vtemp *t = v.u.tm;
	if (kind == K_DUR)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: duration() of a "
		     "temporal");
	if (has_date(kind)) {
		if (!has_date(s->kind))
			qerr(c, LORA_ETYPE,
			     "InvalidArgumentType: no date in "
			     "the argument");
		t->days = s->days;
	}
	if (has_time(kind))
		t->nanos = has_time(s->kind) ? s->nanos : 0;
	if (zoned(kind)) {
		t->offset = zoned(s->kind) ? s->offset : 0;
		t->zone = zoned(s->kind) ? s->zone : NULL;
	}
	return v;
}

static int kind_of(const char *name, size_t len)
{
	static const char *n[] = {"date",          "localtime", "time",
	                          "localdatetime", "datetime",  "duration"};
	for (int i = 0; i < 6; i++)
		if (strlen(n[i]) == len && !strncasecmp(name, n[i], len))
			return i;
	return -1;
}

static struct val now(struct qctx *c, int kind, const char *tz)
{
	struct val v = mk(c, kind);
	int64_t ms = c->stmt_time_ms;
	int64_t ns = ms * 1000000;
	v.u.tm->days = floordiv(ns, DAY_NS);
	v.u.tm->nanos = floormod(ns, DAY_NS);
	if (tz && zoned(kind)) {
		struct tzinfo *z = tz_need(c, tz);
		int32_t o = tz_offset_utc(z, ms / 1000);
		shift_to(v.u.tm, 0, o);
		v.u.tm->offset = o;
		v.u.tm->zone = tz;
	}
	return v;
}

struct val tm_construct(struct qctx *c, int kind, struct val *a, size_t n,
                        const char *variant)
{
	(void)variant;
	if (n == 0)
		return now(c, kind, NULL);
	struct val x = a[0];
	if (x.t == V_NULL)
		return x;
	if (x.t == V_STR)
		return kind == K_DUR ? dur_from_string(c, x.u.s->s)
		                     : from_string(c, kind, x.u.s->s);
	if (x.t == V_MAP)
		return from_map(c, kind, x.u.m);
	if (x.t == V_TEMPORAL)
		return from_temporal(c, kind, x.u.tm);
	qerr(c, LORA_ETYPE,
	     "InvalidArgumentType: cannot build a temporal "
	     "value from a %s",
	     v_type_name(x));
}

/* ---- formatting -------------------------------------------------------- */

static void fmt_date(int64_t days, struct lora_buf *b)
{
	int64_t y, m, d;
	civil_from_days(days, &y, &m, &d);
	if (y > 9999)
		lora_buf_printf(b, "+%lld", (long long)y);
	else if (y < 0)
		lora_buf_printf(b, "-%04lld", (long long)-y);
	else
		lora_buf_printf(b, "%04lld", (long long)y);
	lora_buf_printf(b, "-%02lld-%02lld", (long long)m, (long long)d);
}

static void fmt_frac(int64_t ns, struct lora_buf *b)
{
	if (!ns)
		return;
	if (ns % 1000000 == 0)
		lora_buf_printf(b, ".%03lld", (long long)(ns / 1000000));
	else if (ns % 1000 == 0)
		lora_buf_printf(b, ".%06lld", (long long)(ns / 1000));
	else
		lora_buf_printf(b, ".%09lld", (long long)ns);
}

static void fmt_time(int64_t n, struct lora_buf *b)
{
	int64_t s = n / NS;
	lora_buf_printf(b, "%02lld:%02lld", (long long)(s / 3600),
	                (long long)(s / 60 % 60));
	if (s % 60 || n % NS) {
		lora_buf_printf(b, ":%02lld", (long long)(s % 60));
		fmt_frac(n % NS, b);
	}
}

static void fmt_offset(int32_t off, struct lora_buf *b)
{
	if (off == 0) {
		lora_buf_putc(b, 'Z');
		return;
	}
	int32_t a = off < 0 ? -off : off;
	lora_buf_printf(b, "%c%02d:%02d", off < 0 ? '-' : '+', a / 3600,
	                a / 60 % 60);
	if (a % 60)
		lora_buf_printf(b, ":%02d", a % 60);
}

static void fmt_duration(struct vtemp *t, struct lora_buf *b)
{
	lora_buf_putc(b, 'P');
	int64_t y = t->months / 12, m = t->months % 12;
	if (y)
		lora_buf_printf(b, "%lldY", (long long)y);
	if (m)
		lora_buf_printf(b, "%lldM", (long long)m);
	if (t->ddays)
		lora_buf_printf(b, "%lldD", (long long)t->ddays);
	int64_t s = t->secs, ns = t->dnanos;
	if (s || ns) {
		lora_buf_putc(b, 'T');
		/* present seconds and nanos with one sign */
		int neg = s < 0 && ns > 0;
		if (neg) {
			s += 1;
			ns = NS - ns;
		}
		int64_t h = s / 3600, mi = s % 3600 / 60, sec = s % 60;
		if (h)
			lora_buf_printf(b, "%lldH", (long long)h);
		if (mi)
			lora_buf_printf(b, "%lldM", (long long)mi);
		if (sec || ns) {
			if (neg && sec == 0)
				lora_buf_putc(b, '-');
			lora_buf_printf(b, "%lld", (long long)sec);
			if (ns) {
				char f[16];
				snprintf(f, sizeof f, "%09lld", (long long)ns);
				int k = 9;
				while (k > 0 && f[k - 1] == '0')
					k--;
				f[k] = 0;
				lora_buf_printf(b, ".%s", f);
			}
			lora_buf_putc(b, 'S');
		}
	}
	if (!t->months && !t->ddays && !s && !ns)
		lora_buf_puts(b, "T0S");
}

void tm_format(struct vtemp *t, struct lora_buf *b)
{
	switch (t->kind) {
	case K_DATE:
		fmt_date(t->days, b);
		break;
	case K_LTIME:
		fmt_time(t->nanos, b);
		break;
	case K_TIME:
		fmt_time(t->nanos, b);
		fmt_offset(t->offset, b);
		break;
	case K_LDT:
		fmt_date(t->days, b);
		lora_buf_putc(b, 'T');
		fmt_time(t->nanos, b);
		break;
	case K_DT:
		fmt_date(t->days, b);
		lora_buf_putc(b, 'T');
		fmt_time(t->nanos, b);
		fmt_offset(t->offset, b);
		if (t->zone)
			lora_buf_printf(b, "[%s]", t->zone);
		break;
	default:
		fmt_duration(t, b);
	}
}

/* ---- comparison -------------------------------------------------------- */

int tm_cmp(struct vtemp *a, struct vtemp *b, int *r)
{
	if (a->kind != b->kind || a->kind == K_DUR)
		return 0;
	int64_t x, y;
	switch (a->kind) {
	case K_DATE:
		x = a->days;
		y = b->days;
		break;
	case K_LTIME:
		x = a->nanos;
		y = b->nanos;
		break;
	case K_TIME:
		x = a->nanos - (int64_t)a->offset * NS;
		y = b->nanos - (int64_t)b->offset * NS;
		break;
	default: {
		int64_t oa = a->kind == K_DT ? a->offset : 0;
		int64_t ob = b->kind == K_DT ? b->offset : 0;
		__int128 p = (__int128)a->days * DAY_NS + a->nanos - oa * NS;
		__int128 q = (__int128)b->days * DAY_NS + b->nanos - ob * NS;
		*r = p < q ? -1 : p > q;
		return 1;
	}
	}
	*r = x < y ? -1 : x > y;
	return 1;
}

/* ---- accessors --------------------------------------------------------- */

static struct val dur_prop(struct qctx *c, struct vtemp *t, const char *k,
                           int *ok)
{
	(void)c;
	int64_t s = t->secs, ns = t->dnanos;
	struct {
		const char *n;
		int64_t v;
	} f[] = {
	    {"years", t->months / 12},
	    {"quarters", t->months / 3},
	    {"months", t->months},
	    {"weeks", t->ddays / 7},
	    {"days", t->ddays},
	    {"hours", s / 3600},
	    {"minutes", s / 60},
	    {"seconds", s},
	    {"milliseconds", s * 1000 + ns / 1000000},
	    {"microseconds", s * 1000000 + ns / 1000},
	    {"nanoseconds", s * NS + ns},
	    {"quartersOfYear", t->months / 3 % 4},
	    {"monthsOfQuarter", t->months % 3},
	    {"monthsOfYear", t->months % 12},
	    {"daysOfWeek", t->ddays % 7},
	    {"minutesOfHour", s / 60 % 60},
	    {"secondsOfMinute", s % 60},
	    {"millisecondsOfSecond", ns / 1000000},
	    {"microsecondsOfSecond", ns / 1000},
	    {"nanosecondsOfSecond", ns},
	};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (!strcmp(k, f[i].n)) {
			*ok = 1;
			return v_int(f[i].v);
		}
	return v_null();
}

struct val tm_prop(struct qctx *c, struct vtemp *t, const char *k, int *ok)
{
	*ok = 0;
	if (t->kind == K_DUR)
		return dur_prop(c, t, k, ok);
	int64_t y = 0, m = 0, d = 0, wy = 0, w = 0;
	if (has_date(t->kind)) {
		civil_from_days(t->days, &y, &m, &d);
		iso_week(t->days, &wy, &w);
	}
	int64_t n = t->nanos;
	*ok = 1;
	if (has_date(t->kind)) {
		if (!strcmp(k, "year"))
			return v_int(y);
		if (!strcmp(k, "quarter"))
			return v_int((m - 1) / 3 + 1);
		if (!strcmp(k, "month"))
			return v_int(m);
		if (!strcmp(k, "week"))
			return v_int(w);
		if (!strcmp(k, "weekYear"))
			return v_int(wy);
		if (!strcmp(k, "day"))
			return v_int(d);
		if (!strcmp(k, "ordinalDay"))
			return v_int(t->days - days_from_civil(y, 1, 1) + 1);
		if (!strcmp(k, "dayOfWeek") || !strcmp(k, "weekDay"))
			return v_int(iso_dow(t->days));
		if (!strcmp(k, "dayOfQuarter"))
			return v_int(
			    t->days -
			    days_from_civil(y, (m - 1) / 3 * 3 + 1, 1) + 1);
	}
	if (has_time(t->kind)) {
		if (!strcmp(k, "hour"))
			return v_int(n / (3600 * NS));
		if (!strcmp(k, "minute"))
			return v_int(n / (60 * NS) % 60);
		if (!strcmp(k, "second"))
			return v_int(n / NS % 60);
		if (!strcmp(k, "millisecond"))
			return v_int(n % NS / 1000000);
		if (!strcmp(k, "microsecond"))
			return v_int(n % NS / 1000);
		if (!strcmp(k, "nanosecond"))
			return v_int(n % NS);
	}
	if (zoned(t->kind)) {
		if (!strcmp(k, "timezone") || !strcmp(k, "offset")) {
			struct lora_buf *b = qbuf(c);
			if (!strcmp(k, "timezone") && t->zone)
				lora_buf_puts(b, t->zone);
			else if (t->offset == 0 && !strcmp(k, "offset"))
				lora_buf_puts(b, "+00:00");
			else
				fmt_offset(t->offset, b);
			return qbuf_val(c, b);
		}
		if (!strcmp(k, "offsetMinutes"))
			return v_int(t->offset / 60);
		if (!strcmp(k, "offsetSeconds"))
			return v_int(t->offset);
	}
	if (t->kind == K_DT || t->kind == K_LDT) {
		int64_t secs = t->days * 86400 + n / NS -
		               (t->kind == K_DT ? t->offset : 0);
		if (!strcmp(k, "epochSeconds"))
			return v_int(secs);
		if (!strcmp(k, "epochMillis"))
			return v_int(secs * 1000 + n % NS / 1000000);
	}
	*ok = 0;
	return v_null();
}

/* ---- arithmetic -------------------------------------------------------- */

static int64_t add_months(int64_t days, int64_t months)
{
	int64_t y, m, d;
	civil_from_days(days, &y, &m, &d);
	int64_t tm = y * 12 + (m - 1) + months;
	y = floordiv(tm, 12);
	m = floormod(tm, 12) + 1;
	if (d > month_len(y, m))
		d = month_len(y, m);
	return days_from_civil(y, m, d);
}

static struct val plus_dur(struct qctx *c, struct vtemp *t, struct vtemp *d,
                           int sign)
{
	struct val v = mk(c, t->kind);
	struct vtemp *r = v.u.tm;
	*r = *t;
	if (has_date(t->kind)) {
		r->days = add_months(r->days, sign * d->months);
		r->days += sign * d->ddays;
	}
	__int128 dn = ((__int128)d->secs * NS + d->dnanos) * sign;
	if (t->kind == K_DATE) {
		r->days += (int64_t)(dn / DAY_NS);
		return v;
	}
	__int128 n = (__int128)r->nanos + dn;
	int64_t carry = (int64_t)(n / DAY_NS);
	int64_t rem = (int64_t)(n % DAY_NS);
	if (rem < 0) {
		rem += DAY_NS;
		carry--;
	}
	r->nanos = rem;
	if (has_date(t->kind))
		r->days += carry;
	if (t->kind == K_DT && t->zone) {
		struct tzinfo *z = tz_need(c, t->zone);
		if (z)
			r->offset =
			    tz_offset_local(z, r->days * 86400 + r->nanos / NS);
	}
	return v;
}

static struct val dur_lin(struct qctx *c, struct vtemp *a, struct vtemp *b,
                          int sign)
{
	struct val v = mk(c, K_DUR);
	struct vtemp *r = v.u.tm;
	r->months = a->months + sign * b->months;
	r->ddays = a->ddays + sign * b->ddays;
	r->secs = a->secs + sign * b->secs;
	r->dnanos = a->dnanos + sign * b->dnanos;
	dur_norm(r);
	return v;
}

static struct val dur_scale(struct qctx *c, struct vtemp *a, double f)
{
	struct val v = mk(c, K_DUR);
	struct vtemp *r = v.u.tm;
	dur_add_months(r, dur_amount(c, (double)a->months * f));
	dur_add_days(r, dur_amount(c, (double)a->ddays * f));
	dur_add_secs(
	    r, dur_amount(c, ((double)a->secs + (double)a->dnanos / 1e9) * f),
	    1);
	dur_norm(r);
	return v;
}

struct val tm_arith(struct qctx *c, char op, struct val a, struct val b,
                    int *ok)
{
	*ok = 1;
	int ad = a.t == V_TEMPORAL && a.u.tm->kind == K_DUR;
	int bd = b.t == V_TEMPORAL && b.u.tm->kind == K_DUR;
	if ((op == '+' || op == '-') && ad && bd)
		return dur_lin(c, a.u.tm, b.u.tm, op == '+' ? 1 : -1);
	if ((op == '+' || op == '-') && a.t == V_TEMPORAL && !ad && bd)
		return plus_dur(c, a.u.tm, b.u.tm, op == '+' ? 1 : -1);
	if (op == '+' && ad && b.t == V_TEMPORAL && !bd)
		return plus_dur(c, b.u.tm, a.u.tm, 1);
	if (op == '*' && ad && v_is_num(b))
		return dur_scale(c, a.u.tm, v_num(b));
	if (op == '*' && bd && v_is_num(a))
		return dur_scale(c, b.u.tm, v_num(a));
	if (op == '/' && ad && v_is_num(b)) {
		if (v_num(b) == 0)
			qerr(c, LORA_EARITH, "ArithmeticError: / by zero");
		return dur_scale(c, a.u.tm, 1.0 / v_num(b));
	}
	*ok = 0;
	return v_null();
}

/* ---- duration.between -------------------------------------------------- */

/* a temporal completed for duration.between: date, time, offset */
struct full {
	int64_t days, nanos;
	int32_t off;
	const char *zone;
	int zoned;
};

static void complete(struct vtemp *t, struct full *f)
{
	f->days = has_date(t->kind) ? t->days : 0;
	f->nanos = has_time(t->kind) ? t->nanos : 0;
	f->zoned = zoned(t->kind);
	f->off = f->zoned ? t->offset : 0;
	f->zone = f->zoned ? t->zone : NULL;
}

/* an unzoned value is read in the zone of the other one */
static void adopt_zone(struct qctx *c, struct full *f, const struct full *o)
{
	if (f->zoned || !o->zoned)
		return;
	f->off = o->off;
	if (o->zone) {
		struct tzinfo *z = tz_need(c, o->zone);
		if (z)
			f->off =
			    tz_offset_local(z, f->days * 86400 + f->nanos / NS);
	}
	f->zoned = 1;
}

static struct val between(struct qctx *c, struct vtemp *a, struct vtemp *b,
                          int what)
{
	struct val v = mk(c, K_DUR);
	struct vtemp *r = v.u.tm;
	struct full fa, fb;
	complete(a, &fa);
	complete(b, &fb);
	int dates = has_date(a->kind) && has_date(b->kind);
	if (!dates) {
		fa.days = fb.days = has_date(a->kind)   ? a->days
		                    : has_date(b->kind) ? b->days
		                                        : 0;
	}
	adopt_zone(c, &fa, &fb);
	adopt_zone(c, &fb, &fa);
	/* express b in a's offset: same instant */
	__int128 bn_all = (__int128)fb.days * DAY_NS + fb.nanos +
	                  (__int128)(fa.off - fb.off) * NS;
	__int128 an_all = (__int128)fa.days * DAY_NS + fa.nanos;
	if (!dates || what == 3) {
		if (!dates && (what == 1 || what == 2))
			return v;
		__int128 d = bn_all - an_all;
		if (what == 1 || what == 2)
			return v;
		r->secs = (int64_t)(d / NS);
		r->dnanos = (int64_t)(d % NS);
		dur_norm(r);
		return v;
	}
	int64_t bdays =
	    (int64_t)(bn_all >= 0 ? bn_all / DAY_NS
	                          : -((-bn_all + DAY_NS - 1) / DAY_NS));
	int64_t bn = (int64_t)(bn_all - (__int128)bdays * DAY_NS);
	int64_t an = fa.nanos;
	int64_t ay, am, ad, by, bm, bd;
	civil_from_days(fa.days, &ay, &am, &ad);
	civil_from_days(bdays, &by, &bm, &bd);
	int64_t months = (by * 12 + bm) - (ay * 12 + am);
	if (months > 0 && (bd < ad || (bd == ad && bn < an)))
		months--;
	else if (months < 0 && (bd > ad || (bd == ad && bn > an)))
		months++;
	if (what == 2)
		months = 0;
	int64_t mid = add_months(fa.days, months);
	__int128 rest =
	    ((__int128)bdays * DAY_NS + bn) - ((__int128)mid * DAY_NS + an);
	int64_t days = (int64_t)(rest / DAY_NS);
	rest -= (__int128)days * DAY_NS;
	r->months = months;
	r->ddays = days;
	if (what == 1) {
		r->ddays = 0;
		return v;
	}
	if (what == 2)
		return v;
	r->secs = (int64_t)(rest / NS);
	r->dnanos = (int64_t)(rest % NS);
	dur_norm(r);
	return v;
}

/* ---- dispatch ---------------------------------------------------------- */

/* ---- truncate ---------------------------------------------------------- */

enum tunit {
	TU_MILLENNIUM,
	TU_CENTURY,
	TU_DECADE,
	TU_YEAR,
	TU_WEEKYEAR,
	TU_QUARTER,
	TU_MONTH,
	TU_WEEK,
	TU_DAY,
	TU_HOUR,
	TU_MINUTE,
	TU_SECOND,
	TU_MILLISECOND,
	TU_MICROSECOND,
	TU_NANOSECOND,
	TU_COUNT
};

static const char *const tunit_names[TU_COUNT] = {
    "millennium", "century", "decade",      "year",        "weekYear",
    "quarter",    "month",   "week",        "day",         "hour",
    "minute",     "second",  "millisecond", "microsecond", "nanosecond"};

static int64_t trunc_days(int64_t days, int unit)
{
	int64_t y, m, d, wy, w;
	civil_from_days(days, &y, &m, &d);
	switch (unit) {
	case TU_MILLENNIUM:
		return days_from_civil(floordiv(y, 1000) * 1000, 1, 1);
	case TU_CENTURY:
		return days_from_civil(floordiv(y, 100) * 100, 1, 1);
	case TU_DECADE:
		return days_from_civil(floordiv(y, 10) * 10, 1, 1);
	case TU_YEAR:
		return days_from_civil(y, 1, 1);
	case TU_WEEKYEAR:
		iso_week(days, &wy, &w);
		return week1_monday(wy);
	case TU_QUARTER:
		return days_from_civil(y, (m - 1) / 3 * 3 + 1, 1);
	case TU_MONTH:
		return days_from_civil(y, m, 1);
	case TU_WEEK:
		return days - (iso_dow(days) - 1);
	default:
		return days;
	}
}

static int64_t trunc_nanos(int64_t n, int unit)
{
	static const int64_t step[TU_COUNT] = {
	    [TU_HOUR] = 3600 * NS,   [TU_MINUTE] = 60 * NS,
	    [TU_SECOND] = NS,        [TU_MILLISECOND] = 1000000,
	    [TU_MICROSECOND] = 1000, [TU_NANOSECOND] = 1};
	return unit <= TU_DAY ? 0 : n - n % step[unit];
}

/* The unit named by u, or an error when `kind` has no such field. */
static int trunc_unit(struct qctx *c, int kind, const char *fn, struct val u)
{
	if (u.t != V_STR)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: %s needs the unit as a string", fn);
	int unit = 0;
	while (unit < TU_COUNT && strcasecmp(u.u.s->s, tunit_names[unit]))
		unit++;
	if (unit == TU_COUNT)
		qerr(c, LORA_EINVAL, "InvalidArgumentValue: unknown unit '%s'",
		     u.u.s->s);
	if ((!has_time(kind) && unit > TU_DAY) ||
	    (!has_date(kind) && unit < TU_DAY))
		qerr(c, LORA_EINVAL,
		     "InvalidArgumentValue: %s cannot truncate to '%s'", fn,
		     tunit_names[unit]);
	return unit;
}

/*
 * date.truncate(unit, value [, map]) and the same for the other kinds, as
 * in Neo4j: value cut down to the start of its unit (fields below it set to
 * their first value), then the map's fields set over it. A time zone in the
 * map replaces the value's own and keeps the local date and time; without
 * one, the value's zone is kept (a named zone's offset taken for the new
 * local time).
 */
static struct val truncate_to(struct qctx *c, int kind, const char *fn,
                              struct val *a, size_t n)
{
	if (n < 2 || n > 3)
		qerr(c, LORA_ESEMANTIC,
		     "InvalidNumberOfArguments: %s takes 2 or 3 arguments", fn);
	if (a[1].t == V_NULL)
		return v_null();
	int unit = trunc_unit(c, kind, fn, a[0]);
	if (a[1].t != V_TEMPORAL || a[1].u.tm->kind == K_DUR)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: %s needs a temporal instant", fn);
	struct vtemp *s = a[1].u.tm;
	if ((has_date(kind) && !has_date(s->kind)) ||
	    (!has_date(kind) && !has_time(s->kind)))
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: %s of a value without a %s", fn,
		     has_date(kind) ? "date" : "time");
	struct vmap *over = n == 3 && a[2].t == V_MAP ? a[2].u.m : NULL;
	if (n == 3 && a[2].t != V_MAP && a[2].t != V_NULL)
		qerr(c, LORA_ETYPE, "InvalidArgumentType: %s needs a map", fn);
	int new_zone = over && vmap_get(over, "timezone");
	/* the cut value: unzoned when the map brings its own zone */
	int base_kind = kind;
	if (new_zone && kind == K_DT)
		base_kind = K_LDT;
	else if (new_zone && kind == K_TIME)
		base_kind = K_LTIME;
	struct val b = mk(c, base_kind);
	struct vtemp *t = b.u.tm;
	if (has_date(kind))
		t->days = trunc_days(s->days, unit);
	if (has_time(kind) && has_time(s->kind))
		t->nanos = trunc_nanos(s->nanos, unit);
	if (zoned(base_kind) && zoned(s->kind)) {
		t->offset = s->offset;
		t->zone = s->zone;
	}
	if (!over || !over->n) {
		if (t->zone && kind == K_DT)
			set_zone(c, t, 0, 0, t->zone);
		return b;
	}
	struct val m = v_map(c, over->n + 2);
	for (size_t i = 0; i < over->n; i++)
		vmap_put(c, m.u.m, over->k[i], over->v[i]);
	vmap_put(c, m.u.m, "datetime", b);
	/* dayOfWeek alone moves within the week the value was cut to */
	if (has_date(kind) && vmap_get(over, "dayOfWeek") &&
	    !vmap_get(over, "week")) {
		int64_t wy, w;
		iso_week(t->days, &wy, &w);
		vmap_put(c, m.u.m, "week", v_int(w));
		if (!vmap_get(over, "year"))
			vmap_put(c, m.u.m, "year", v_int(wy));
	}
	return from_map(c, kind, m.u.m);
}

int tm_has_fn(const char *name)
{
	const char *dot = strchr(name, '.');
	size_t len = dot ? (size_t)(dot - name) : strlen(name);
	return kind_of(name, len) >= 0;
}

struct val tm_fn(struct qctx *c, const char *name, struct val *a, size_t n,
                 int *ok)
{
	const char *dot = strchr(name, '.');
	size_t len = dot ? (size_t)(dot - name) : strlen(name);
	int kind = kind_of(name, len);
	*ok = 1;
	if (!dot) {
		if (n > 1)
			qerr(c, LORA_ESEMANTIC,
			     "InvalidNumberOfArguments: %s "
			     "takes at most one argument",
			     name);
		return tm_construct(c, kind, a, n, NULL);
	}
	const char *sub = dot + 1;
	if (kind == K_DUR &&
	    (!strcasecmp(sub, "between") || !strcasecmp(sub, "inMonths") ||
	     !strcasecmp(sub, "inDays") || !strcasecmp(sub, "inSeconds"))) {
		if (n != 2)
			qerr(c, LORA_ESEMANTIC, "InvalidNumberOfArguments: %s",
			     name);
		if (a[0].t == V_NULL || a[1].t == V_NULL)
			return v_null();
		if (a[0].t != V_TEMPORAL || a[1].t != V_TEMPORAL ||
		    a[0].u.tm->kind == K_DUR || a[1].u.tm->kind == K_DUR)
			qerr(c, LORA_ETYPE,
			     "InvalidArgumentType: %s needs two "
			     "temporal values",
			     name);
		int what = !strcasecmp(sub, "between")    ? 0
		           : !strcasecmp(sub, "inMonths") ? 1
		           : !strcasecmp(sub, "inDays")   ? 2
		                                          : 3;
		return between(c, a[0].u.tm, a[1].u.tm, what);
	}
	if (kind == K_DT && !strcasecmp(sub, "fromepoch") && n == 2) {
		if (!v_is_num(a[0]) || !v_is_num(a[1]))
			return v_null();
		double extra = v_num(a[1]);
		if (!(extra > -9.2e18 && extra < 9.2e18))
			qerr(c, LORA_EARITH,
			     "ArithmeticError: nanoseconds "
			     "out of range");
		int64_t ns = epoch_ns(c, v_num(a[0]), NS, (int64_t)extra);
		struct val v = mk(c, K_DT);
		v.u.tm->days = floordiv(ns, DAY_NS);
		v.u.tm->nanos = floormod(ns, DAY_NS);
		return v;
	}
	if (kind == K_DT && !strcasecmp(sub, "fromepochmillis") && n == 1) {
		if (!v_is_num(a[0]))
			return v_null();
		int64_t ns = epoch_ns(c, v_num(a[0]), 1000000, 0);
		struct val v = mk(c, K_DT);
		v.u.tm->days = floordiv(ns, DAY_NS);
		v.u.tm->nanos = floormod(ns, DAY_NS);
		return v;
	}
	if (kind != K_DUR && !strcasecmp(sub, "truncate"))
		return truncate_to(c, kind, name, a, n);
	if (!strcasecmp(sub, "transaction") || !strcasecmp(sub, "statement") ||
	    !strcasecmp(sub, "realtime")) {
		if (n && a[0].t == V_NULL)
			return v_null();
		return now(c, kind, n && a[0].t == V_STR ? a[0].u.s->s : NULL);
	}
	*ok = 0;
	return v_null();
}

/* ---- zones for other modules (Bolt's DateTimeZoneId parameters) -------- */

int qry_zone_offset(const char *zone, int64_t seconds, int local,
                    int32_t *offset_seconds)
{
	int code = LORA_EINVAL;
	struct tzinfo *z = zone ? tz_load(zone, &code) : NULL;
	if (z == NULL)
		return code;
	*offset_seconds =
	    local ? tz_offset_local(z, seconds) : tz_offset_utc(z, seconds);
	return 0;
}
