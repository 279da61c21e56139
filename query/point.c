/* point.c - spatial point values: point({...}), their properties, equality
 * and order, point.distance and point.withinBBox, as Neo4j 5 defines them.
 *
 * A point is a coordinate reference system (its srid) and two or three
 * doubles. Cartesian points (7203, 9157) measure Euclidean distances;
 * WGS-84 points (4326, 4979) hold longitude, latitude and height in
 * metres and measure the haversine great-circle distance over a sphere
 * of Neo4j's radius, so that the same query gives the same number in both.
 * Points of different reference systems are never equal, and distances
 * and bounding boxes between them are null. `<` and friends are null
 * between points (Neo4j 5: use withinBBox or distance); ORDER BY sorts
 * them by srid, then x, y, z. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "qint.h"

/* Neo4j's sphere for WGS-84 distances, in metres */
#define PT_EARTH_RADIUS_M 6378140.0

int pt_dim(uint32_t srid)
{
	return srid == PT_SRID_CARTESIAN_3D || srid == PT_SRID_WGS84_3D ? 3 : 2;
}

int pt_geographic(uint32_t srid)
{
	return srid == PT_SRID_WGS84 || srid == PT_SRID_WGS84_3D;
}

int pt_srid_known(uint32_t srid)
{
	return srid == PT_SRID_CARTESIAN || srid == PT_SRID_CARTESIAN_3D ||
	       srid == PT_SRID_WGS84 || srid == PT_SRID_WGS84_3D;
}

const char *pt_crs_name(uint32_t srid)
{
	switch (srid) {
	case PT_SRID_CARTESIAN:
		return "cartesian";
	case PT_SRID_CARTESIAN_3D:
		return "cartesian-3d";
	case PT_SRID_WGS84:
		return "wgs-84";
	case PT_SRID_WGS84_3D:
		return "wgs-84-3d";
	default:
		return "unknown";
	}
}

static uint32_t crs_srid(const char *name)
{
	static const uint32_t ids[] = {PT_SRID_CARTESIAN, PT_SRID_CARTESIAN_3D,
	                               PT_SRID_WGS84, PT_SRID_WGS84_3D};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		if (!strcasecmp(name, pt_crs_name(ids[i])))
			return ids[i];
	return 0;
}

/* a longitude outside [-180, 180] wrapped into it, as Neo4j does (an
 * infinite one is refused before: pt_check) */
static double wrap_longitude(double x)
{
	if (!(x < -180 || x > 180) || !isfinite(x))
		return x;
	x = fmod(x + 180, 360);
	return (x < 0 ? x + 360 : x) - 180;
}

void pt_check(struct qctx *c, int code, uint32_t srid, double x, double y)
{
	if (!pt_geographic(srid))
		return;
	if (!isfinite(x))
		qerr(c, code,
		     "InvalidArgumentValue: longitude %g is not a finite "
		     "number",
		     x);
	if (y < -90 || y > 90 || isnan(y))
		qerr(c, code,
		     "InvalidArgumentValue: latitude %g is outside [-90, 90]",
		     y);
}

struct val v_point(struct qctx *c, uint32_t srid, double x, double y, double z)
{
	struct val v = {.t = V_POINT};
	if (pt_geographic(srid))
		x = wrap_longitude(x);
	v.u.pt = ar_alloc(c, sizeof(*v.u.pt));
	v.u.pt->srid = srid;
	v.u.pt->x = x;
	v.u.pt->y = y;
	v.u.pt->z = pt_dim(srid) == 3 ? z : 0;
	return v;
}

/* one coordinate of the map: 1 when given (a number), 0 when absent,
 * -1 when null (the point is null then) */
static int coord(struct qctx *c, struct vmap *m, const char *k, double *out)
{
	struct val *v = vmap_get(m, k);
	if (!v)
		return 0;
	if (v->t == V_NULL)
		return -1;
	if (!v_is_num(*v))
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: point() coordinate %s must be a "
		     "number, not %s",
		     k, v_type_name(*v));
	*out = v_num(*v);
	return 1;
}

/* the srid the map names with `crs` or `srid`, or 0 */
static uint32_t named_srid(struct qctx *c, struct vmap *m, int *null)
{
	struct val *crs = vmap_get(m, "crs"), *srid = vmap_get(m, "srid");
	uint32_t s = 0;
	if ((crs && crs->t == V_NULL) || (srid && srid->t == V_NULL))
		*null = 1;
	if (crs && crs->t == V_STR && !(s = crs_srid(crs->u.s->s)))
		qerr(c, LORA_EINVAL,
		     "InvalidArgumentValue: point() crs '%s' is not one of "
		     "cartesian, cartesian-3d, wgs-84, wgs-84-3d",
		     crs->u.s->s);
	if (crs && crs->t != V_STR && crs->t != V_NULL)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: point() crs must "
		     "be a string");
	if (srid && srid->t == V_INT) {
		if (srid->u.i < 0 || srid->u.i > UINT32_MAX ||
		    !pt_srid_known((uint32_t)srid->u.i))
			qerr(c, LORA_EINVAL,
			     "InvalidArgumentValue: point() srid %lld is not "
			     "one of 7203, 9157, 4326, 4979",
			     (long long)srid->u.i);
		if (s && s != (uint32_t)srid->u.i)
			qerr(c, LORA_EINVAL,
			     "InvalidArgumentValue: point() crs and srid "
			     "disagree");
		s = (uint32_t)srid->u.i;
	} else if (srid && srid->t != V_NULL) {
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: point() srid must "
		     "be an integer");
	}
	return s;
}

/* point(map): {x, y[, z]} or {longitude, latitude[, height]}, with an
 * optional crs or srid; null when the map or a coordinate is null */
struct val pt_construct(struct qctx *c, struct val arg)
{
	if (arg.t == V_NULL)
		return arg;
	if (arg.t != V_MAP)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: point() takes a map, not %s",
		     v_type_name(arg));
	struct vmap *m = arg.u.m;
	double x = 0, y = 0, z = 0, lo = 0, la = 0, h = 0;
	int hx = coord(c, m, "x", &x), hy = coord(c, m, "y", &y);
	int hz = coord(c, m, "z", &z), hlo = coord(c, m, "longitude", &lo);
	int hla = coord(c, m, "latitude", &la), hh = coord(c, m, "height", &h);
	int null = hx < 0 || hy < 0 || hz < 0 || hlo < 0 || hla < 0 || hh < 0;
	uint32_t srid = named_srid(c, m, &null);
	int cart = hx || hy || hz, geo = hlo || hla || hh;
	if (cart && geo)
		qerr(c, LORA_EINVAL,
		     "InvalidArgumentValue: point() takes x/y/z or "
		     "longitude/latitude/height, not both");
	if (geo) {
		hx = hlo, hy = hla, hz = hh, x = lo, y = la, z = h;
		if (srid && !pt_geographic(srid))
			qerr(c, LORA_EINVAL,
			     "InvalidArgumentValue: point() with longitude "
			     "and latitude cannot be %s",
			     pt_crs_name(srid));
	}
	if (!hx || !hy)
		qerr(c, LORA_EINVAL,
		     "InvalidArgumentValue: point() needs x and y, or "
		     "longitude and latitude");
	if (null)
		return v_null();
	if (!srid)
		srid = geo ? (hz ? PT_SRID_WGS84_3D : PT_SRID_WGS84)
		           : (hz ? PT_SRID_CARTESIAN_3D : PT_SRID_CARTESIAN);
	if ((pt_dim(srid) == 3) != (hz != 0))
		qerr(c, LORA_EINVAL,
		     "InvalidArgumentValue: a %s point takes %d coordinates",
		     pt_crs_name(srid), pt_dim(srid));
	pt_check(c, LORA_EINVAL, srid, x, y);
	return v_point(c, srid, x, y, z);
}

static _Noreturn void no_field(struct qctx *c, const char *k,
                               const struct vpoint *p)
{
	qerr(c, LORA_EINVAL,
	     "InvalidArgumentValue: field `%s` is not available on a %s point",
	     k, pt_crs_name(p->srid));
}

/* p.x .y .z .longitude .latitude .height .crs .srid; *ok = 0 for a key
 * that is no point field (the caller raises its type error) */
struct val pt_prop(struct qctx *c, const struct vpoint *p, const char *k,
                   int *ok)
{
	int geo = pt_geographic(p->srid), d3 = pt_dim(p->srid) == 3;
	*ok = 1;
	if (!strcmp(k, "x"))
		return v_float(p->x);
	if (!strcmp(k, "y"))
		return v_float(p->y);
	if (!strcmp(k, "z") || !strcmp(k, "height")) {
		if (!d3 || (k[0] == 'h' && !geo))
			no_field(c, k, p);
		return v_float(p->z);
	}
	if (!strcmp(k, "longitude") || !strcmp(k, "latitude")) {
		if (!geo)
			no_field(c, k, p);
		return v_float(k[1] == 'o' ? p->x : p->y);
	}
	if (!strcmp(k, "crs"))
		return v_cstr(c, pt_crs_name(p->srid));
	if (!strcmp(k, "srid"))
		return v_int(p->srid);
	*ok = 0;
	return v_null();
}

int pt_eq(const struct vpoint *a, const struct vpoint *b)
{
	return a->srid == b->srid && a->x == b->x && a->y == b->y &&
	       a->z == b->z;
}

static int cmp_d(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) - isnan(b);
	return a < b ? -1 : a > b;
}

int pt_order(const struct vpoint *a, const struct vpoint *b)
{
	if (a->srid != b->srid)
		return a->srid < b->srid ? -1 : 1;
	int r = cmp_d(a->x, b->x);
	if (!r)
		r = cmp_d(a->y, b->y);
	return r ? r : cmp_d(a->z, b->z);
}

uint64_t pt_hash(const struct vpoint *p)
{
	double d[3] = {p->x + 0.0, p->y + 0.0, p->z + 0.0}; /* -0.0 == 0.0 */
	uint64_t h = p->srid, u;
	for (int i = 0; i < 3; i++) {
		memcpy(&u, &d[i], 8);
		h = (h ^ u) * 1099511628211ull;
	}
	return h;
}

/* point({x: 1.0, y: 2.0, crs: 'cartesian'}), as Neo4j prints a point */
void pt_format(const struct vpoint *p, struct lora_buf *b)
{
	lora_buf_puts(b, "point({x: ");
	fmt_double(p->x, b);
	lora_buf_puts(b, ", y: ");
	fmt_double(p->y, b);
	if (pt_dim(p->srid) == 3) {
		lora_buf_puts(b, ", z: ");
		fmt_double(p->z, b);
	}
	lora_buf_printf(b, ", crs: '%s'})", pt_crs_name(p->srid));
}

double pt_distance(const struct vpoint *a, const struct vpoint *b)
{
	if (!pt_geographic(a->srid)) {
		double dx = a->x - b->x, dy = a->y - b->y, dz = a->z - b->z;
		return sqrt(dx * dx + dy * dy + dz * dz);
	}
	double la1 = a->y * M_PI / 180, la2 = b->y * M_PI / 180;
	double dlo = (b->x - a->x) * M_PI / 180, dla = la2 - la1;
	double s1 = sin(dla / 2), s2 = sin(dlo / 2);
	double h = s1 * s1 + cos(la1) * cos(la2) * s2 * s2;
	double angle = 2 * atan2(sqrt(h), sqrt(1 - h));
	if (pt_dim(a->srid) == 2)
		return PT_EARTH_RADIUS_M * angle;
	/* 3-D: the arc at the mean height, then Pythagoras with the
	 * difference in height (as Neo4j computes it) */
	double arc = (PT_EARTH_RADIUS_M + (a->z + b->z) / 2) * angle;
	double dh = a->z - b->z;
	return sqrt(arc * arc + dh * dh);
}

int pt_within_bbox(const struct vpoint *p, const struct vpoint *lo,
                   const struct vpoint *hi)
{
	int in_x;
	if (pt_geographic(p->srid) && lo->x > hi->x) /* across 180 degrees */
		in_x = p->x >= lo->x || p->x <= hi->x;
	else
		in_x = p->x >= lo->x && p->x <= hi->x;
	int in = in_x && p->y >= lo->y && p->y <= hi->y;
	if (pt_dim(p->srid) == 3)
		in = in && p->z >= lo->z && p->z <= hi->z;
	return in;
}

int pt_circle_box(const struct vpoint *c, double r, struct vpoint *lo,
                  struct vpoint *hi)
{
	if (!(r >= 0) || isinf(r))
		return 0;
	*lo = *hi = *c;
	if (!pt_geographic(c->srid)) {
		lo->x -= r, lo->y -= r, lo->z -= r;
		hi->x += r, hi->y += r, hi->z += r;
		return !isinf(lo->x) && !isinf(hi->x);
	}
	if (pt_dim(c->srid) == 3)
		return 0; /* the arc's radius depends on both heights */
	/* the angle r spans, with a margin for rounding; latitude moves
	 * by at most that angle, longitude by asin(sin(a) / cos(lat)) */
	double a = r / PT_EARTH_RADIUS_M * (1 + 1e-9) + 1e-12;
	double dlat = a * 180 / M_PI;
	if (a >= M_PI / 2 || c->y - dlat <= -90 || c->y + dlat >= 90)
		return 0;
	double s = sin(a) / cos(c->y * M_PI / 180);
	if (s >= 1)
		return 0;
	double dlon = asin(s) * 180 / M_PI * (1 + 1e-9) + 1e-9;
	lo->x = c->x - dlon, hi->x = c->x + dlon;
	lo->y = c->y - dlat, hi->y = c->y + dlat;
	return lo->x >= -180 && hi->x <= 180;
}

static const struct vpoint *pt_arg(struct qctx *c, const char *fn, struct val v)
{
	if (v.t != V_POINT)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: %s() takes points, not %s", fn,
		     v_type_name(v));
	return v.u.pt;
}

int pt_has_fn(const char *name)
{
	return !strcasecmp(name, "point") ||
	       !strcasecmp(name, "point.distance") ||
	       !strcasecmp(name, "point.withinBBox");
}

/* point(map), point.distance(a, b), point.withinBBox(p, lowerLeft,
 * upperRight); *ok = 0 for another name */
struct val pt_fn(struct qctx *c, const char *name, struct val *a, size_t n,
                 int *ok)
{
	*ok = 1;
	size_t want = !strcasecmp(name, "point")              ? 1
	              : !strcasecmp(name, "point.distance")   ? 2
	              : !strcasecmp(name, "point.withinBBox") ? 3
	                                                      : 0;
	if (!want) {
		*ok = 0;
		return v_null();
	}
	if (n != want)
		qerr(c, LORA_ESEMANTIC,
		     "InvalidNumberOfArguments: %s() takes %zu arguments", name,
		     want);
	if (want == 1)
		return pt_construct(c, a[0]);
	for (size_t i = 0; i < n; i++)
		if (a[i].t == V_NULL)
			return v_null();
	const struct vpoint *p = pt_arg(c, name, a[0]);
	const struct vpoint *q = pt_arg(c, name, a[1]);
	if (want == 2)
		return p->srid == q->srid ? v_float(pt_distance(p, q))
		                          : v_null();
	const struct vpoint *r = pt_arg(c, name, a[2]);
	if (p->srid != q->srid || p->srid != r->srid)
		return v_null();
	return v_bool(pt_within_bbox(p, q, r));
}
