/* procs.c - CALL procedure: table-defined procedures registered by tests
 * (the TCK), and the built-ins db.labels, db.relationshipTypes,
 * db.propertyKeys, db.index.vector.queryNodes and
 * db.index.vector.queryRelationships. */
#include <ctype.h>
#include <pthread.h>
#include <string.h>

#include "qint.h"

#define PROC_FIELDS_MAX    32
#define PROC_SIG_BYTES_MAX 4096

struct pfield {
	char name[64];
	char type[32];
};

struct proc {
	char name[128];
	struct pfield in[PROC_FIELDS_MAX], out[PROC_FIELDS_MAX];
	int nin, nout;
	int is_void;
	uint8_t **rows; /* packed Lora__ValueMap */
	size_t *lens;
	size_t nrows;
	const char *outnames[PROC_FIELDS_MAX];
};

static struct proc *procs[QRY_PROC_TABLES_MAX];
static size_t nprocs;
static pthread_mutex_t procs_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *builtin_names[] = {"db.labels",
                                      "db.relationshipTypes",
                                      "db.propertyKeys",
                                      "db.index.vector.queryNodes",
                                      "db.index.vector.queryRelationships",
                                      NULL};
static const char *builtin_outs[][3] = {{"label", NULL},
                                        {"relationshipType", NULL},
                                        {"propertyKey", NULL},
                                        {"node", "score", NULL},
                                        {"relationship", "score", NULL}};

static void proc_free(struct proc *p)
{
	for (size_t i = 0; i < p->nrows; i++)
		lora_free(p->rows[i]);
	lora_free(p->rows);
	lora_free(p->lens);
	lora_free(p);
}

void qry_proc_clear(void)
{
	pthread_mutex_lock(&procs_mu);
	for (size_t i = 0; i < nprocs; i++)
		proc_free(procs[i]);
	nprocs = 0;
	pthread_mutex_unlock(&procs_mu);
}

static const char *skip_ws(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* name :: TYPE?, ... up to ')' */
static const char *parse_fields(const char *s, struct pfield *f, int *n)
{
	*n = 0;
	s = skip_ws(s);
	if (*s != '(')
		return NULL;
	s = skip_ws(s + 1);
	while (*s && *s != ')') {
		if (*n >= PROC_FIELDS_MAX)
			return NULL;
		size_t k = 0;
		while (*s && (isalnum((unsigned char)*s) || *s == '_') &&
		       k < 63)
			f[*n].name[k++] = *s++;
		f[*n].name[k] = 0;
		s = skip_ws(s);
		if (s[0] != ':' || s[1] != ':')
			return NULL;
		s = skip_ws(s + 2);
		k = 0;
		while (*s && (isalnum((unsigned char)*s) || *s == '?') &&
		       k < 31)
			f[*n].type[k++] = *s++;
		f[*n].type[k] = 0;
		(*n)++;
		s = skip_ws(s);
		if (*s == ',')
			s = skip_ws(s + 1);
	}
	return *s == ')' ? s + 1 : NULL;
}

static int parse_sig(const char *sig, struct proc *p)
{
	const char *s = skip_ws(sig);
	size_t k = 0;
	while (*s && *s != '(' && !isspace((unsigned char)*s) &&
	       k < sizeof p->name - 1)
		p->name[k++] = *s++;
	p->name[k] = 0;
	s = parse_fields(s, p->in, &p->nin);
	if (!s)
		return -1;
	s = skip_ws(s);
	if (s[0] != ':' || s[1] != ':')
		return -1;
	s = skip_ws(s + 2);
	if (strncmp(s, "VOID", 4) == 0) {
		p->is_void = 1;
		return 0;
	}
	s = parse_fields(s, p->out, &p->nout);
	for (int i = 0; i < p->nout; i++)
		p->outnames[i] = p->out[i].name;
	return s ? 0 : -1;
}

int qry_proc_register_table(const char *signature,
                            const Lora__ValueMap *const *rows, size_t n_rows,
                            struct qry_error *err)
{
	if (err)
		memset(err, 0, sizeof *err);
	if (!signature || strlen(signature) > PROC_SIG_BYTES_MAX) {
		if (err)
			err->code = lora_errf(LORA_EINVAL, err->message,
			                      "bad procedure signature");
		return LORA_EINVAL;
	}
	struct proc *p = lora_calloc(1, sizeof(*p));
	if (!p)
		return LORA_ENOMEM;
	if (parse_sig(signature, p)) {
		lora_free(p);
		if (err)
			err->code =
			    lora_errf(LORA_EINVAL, err->message,
			              "cannot parse signature '%s'", signature);
		return LORA_EINVAL;
	}
	p->rows = lora_calloc(n_rows + 1, sizeof(uint8_t *));
	p->lens = lora_calloc(n_rows + 1, sizeof(size_t));
	if (!p->rows || !p->lens) {
		proc_free(p);
		return LORA_ENOMEM;
	}
	for (size_t i = 0; i < n_rows; i++) {
		size_t len = lora__value_map__get_packed_size(rows[i]);
		p->rows[i] = lora_malloc(len + 1);
		if (!p->rows[i]) {
			proc_free(p);
			return LORA_ENOMEM;
		}
		lora__value_map__pack(rows[i], p->rows[i]);
		p->lens[i] = len;
		p->nrows++;
	}
	pthread_mutex_lock(&procs_mu);
	for (size_t i = 0; i < nprocs; i++)
		if (strcmp(procs[i]->name, p->name) == 0) {
			proc_free(procs[i]);
			procs[i] = p;
			pthread_mutex_unlock(&procs_mu);
			return 0;
		}
	if (nprocs >= QRY_PROC_TABLES_MAX) {
		pthread_mutex_unlock(&procs_mu);
		proc_free(p);
		return LORA_ELIMIT;
	}
	procs[nprocs++] = p;
	pthread_mutex_unlock(&procs_mu);
	return 0;
}

static struct proc *find_proc(const char *name)
{
	for (size_t i = 0; i < nprocs; i++)
		if (strcmp(procs[i]->name, name) == 0)
			return procs[i];
	return NULL;
}

static int builtin(const char *name)
{
	for (int i = 0; builtin_names[i]; i++)
		if (strcmp(builtin_names[i], name) == 0)
			return i;
	return -1;
}

int proc_exists(const char *name)
{
	return builtin(name) >= 0 || find_proc(name) != NULL;
}

size_t proc_outputs(const char *name, const char ***names)
{
	int b = builtin(name);
	if (b >= 0) {
		*names = (const char **)builtin_outs[b];
		size_t n = 0;
		while (n < 3 && builtin_outs[b][n])
			n++;
		return n;
	}
	struct proc *p = find_proc(name);
	*names = p ? p->outnames : NULL;
	return p ? (size_t)p->nout : 0;
}

int proc_inputs(const char *name)
{
	int b = builtin(name);
	if (b >= 0)
		return b == 3 || b == 4 ? 3 : 0;
	struct proc *p = find_proc(name);
	return p ? p->nin : -1;
}

static int type_ok(const char *t, struct val v)
{
	if (v.t == V_NULL)
		return 1;
	if (!strncmp(t, "INTEGER", 7))
		return v.t == V_INT;
	if (!strncmp(t, "FLOAT", 5))
		return v.t == V_FLOAT || v.t == V_INT;
	if (!strncmp(t, "NUMBER", 6))
		return v_is_num(v);
	if (!strncmp(t, "STRING", 6))
		return v.t == V_STR;
	if (!strncmp(t, "BOOLEAN", 7))
		return v.t == V_BOOL;
	return 1;
}

static void call_table(struct qctx *c, struct proc *p, struct clause *cl,
                       struct val *args, struct val *row, struct rows *out)
{
	for (int i = 0; i < p->nin; i++)
		if (!type_ok(p->in[i].type, args[i]))
			qerr(c, LORA_ETYPE,
			     "InvalidArgumentType: argument `%s` of %s must be "
			     "%s",
			     p->in[i].name, p->name, p->in[i].type);
	for (size_t k = 0; k < p->nrows; k++) {
		Lora__ValueMap *m = lora__value_map__unpack(
		    &lora_pb_allocator, p->lens[k], p->rows[k]);
		if (!m)
			qerr(c, LORA_ENOMEM, "procedure row does not decode");
		struct val mv;
		Lora__Value wrap = LORA__VALUE__INIT;
		wrap.kind_case = LORA__VALUE__KIND_MAP_VALUE;
		wrap.map_value = m;
		mv = val_from_pb(c, &wrap);
		lora__value_map__free_unpacked(m, &lora_pb_allocator);
		int ok = 1;
		for (int i = 0; i < p->nin && ok; i++) {
			struct val *have = vmap_get(mv.u.m, p->in[i].name);
			struct val a = args[i];
			if (p->in[i].type[0] == 'F' && a.t == V_INT)
				a = v_float((double)a.u.i);
			ok = have && v_equiv(c, *have, a);
		}
		if (!ok)
			continue;
		struct val *r = row_copy(c, row);
		for (size_t y = 0; y < cl->nyields; y++) {
			struct val *v = vmap_get(mv.u.m, cl->yields[y].name);
			r[cl->yields[y].slot] = v ? *v : v_null();
		}
		if (cl->where && eval_pred(c, cl->where, r) != 1)
			continue;
		rows_push(c, out, r);
	}
}

static void call_names(struct qctx *c, int kind, struct clause *cl,
                       struct val *row, struct rows *out)
{
	char **names = NULL;
	size_t n = 0;
	if (g_view(c)) {
		int rv = sto_view_names(c->view, kind, &names, &n);
		if (rv)
			qerr_sto(c, rv, "names");
	}
	struct val *vals = ar_alloc(c, sizeof(struct val) * (n + 1));
	for (size_t i = 0; i < n; i++)
		vals[i] = v_cstr(c, names[i]);
	sto_names_free(names, n);
	for (size_t i = 0; i < n; i++) {
		struct val *r = row_copy(c, row);
		for (size_t y = 0; y < cl->nyields; y++)
			r[cl->yields[y].slot] = vals[i];
		if (cl->where && eval_pred(c, cl->where, r) != 1)
			continue;
		rows_push(c, out, r);
	}
}

static void call_one(struct qctx *c, struct clause *cl, struct val *row,
                     struct rows *out)
{
	int nin = proc_inputs(cl->proc);
	struct val *args = ar_alloc(c, sizeof(struct val) * (size_t)(nin + 1));
	struct proc *p = find_proc(cl->proc);
	if (cl->implicit_args) {
		for (int i = 0; i < nin && p; i++) {
			struct val *v = c->params
			                    ? vmap_get(c->params, p->in[i].name)
			                    : NULL;
			if (!v)
				qerr(c, LORA_EPARAMS,
				     "MissingParameter: expected parameter $%s",
				     p->in[i].name);
			args[i] = *v;
		}
	} else {
		for (int i = 0; i < nin; i++)
			args[i] = eval(c, cl->pargs[i], row);
	}
	int b = builtin(cl->proc);
	if (b == 3 || b == 4) {
		if (args[0].t != V_STR || args[1].t != V_INT)
			qerr(c, LORA_ETYPE,
			     "InvalidArgumentType: %s("
			     "name, k, vector [, options])",
			     b == 3 ? "queryNodes" : "queryRelationships");
		struct val opts =
		    cl->npargs == 4 ? eval(c, cl->pargs[3], row) : v_null();
		vec_query(c, b == 4, args[0].u.s->s, args[1].u.i, args[2], opts,
		          row, cl, out);
		return;
	}
	if (b >= 0) {
		call_names(c, b, cl, row, out);
		return;
	}
	call_table(c, p, cl, args, row, out);
}

void exec_callproc(struct qctx *c, struct clause *cl, struct rows *in,
                   struct rows *out)
{
	for (size_t i = 0; i < in->n; i++) {
		struct proc *p = find_proc(cl->proc);
		if (p && (p->is_void || p->nout == 0)) {
			rows_push(c, out, in->r[i]);
			continue;
		}
		call_one(c, cl, in->r[i], out);
	}
}
