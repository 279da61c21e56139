/*
 * apply_user.c - the system keyspace: users and the cluster secret, kept
 * in the meta column family ("U" name -> Lora__UserRecord, "K" -> the
 * cluster secret), changed only by UserChange and AuthBootstrap mutations
 * in the log, so every node holds the same users and checkpoints carry
 * them. Apply checks what only the state can tell (a user exists, a role
 * is known) and rejects the batch otherwise, alike on every node.
 */
#include <string.h>

#include "applyInt.h"
#include "sto_testing.h"

/* sto_testing_set_ucache_hook: called between a miss's read and its fill */
static void (*_Atomic sto_testing_ucache_hook)(void *);
static void *_Atomic sto_testing_ucache_arg;

static void ucache_stage(struct sto_store *s);

static const char *const roles_known[] = {"reader", "writer", "admin"};

static int role_known(const char *r)
{
	for (size_t i = 0; i < sizeof roles_known / sizeof *roles_known; i++)
		if (r && !strcmp(r, roles_known[i]))
			return 1;
	return 0;
}

/* "U" name into c->kbuf. */
static int user_key(struct apply_ctx *c, const char *name)
{
	lora_buf_reset(&c->kbuf);
	int rv = lora_buf_putc(&c->kbuf, STO_META_USER);
	return rv ? rv : lora_buf_puts(&c->kbuf, name);
}

/* The stored record of name (c->kbuf holds its key): 0 with *out (NULL
 * when there is none). */
static int user_load(struct apply_ctx *c, const char *name,
                     Lora__UserRecord **out)
{
	*out = NULL;
	char *val;
	size_t vlen;
	int rv = user_key(c, name);
	if (!rv)
		rv = apply_get(c, STO_CF_META, c->kbuf.data, c->kbuf.len, &val,
		               &vlen);
	if (rv || val == NULL)
		return rv;
	*out = lora__user_record__unpack(&lora_pb_allocator, vlen,
	                                 (const uint8_t *)val);
	rocksdb_free(val);
	return *out ? 0
	            : lora_errf(LORA_ECORRUPT, c->errmsg,
	                        "user record of '%s' does not decode", name);
}

static int user_store(struct apply_ctx *c, const Lora__UserRecord *u)
{
	size_t len = lora__user_record__get_packed_size(u);
	uint8_t *buf = lora_malloc(len ? len : 1);
	if (buf == NULL)
		return LORA_ENOMEM;
	lora__user_record__pack(u, buf);
	int rv = user_key(c, u->name);
	if (!rv)
		rv = apply_put(c, STO_CF_META, c->kbuf.data, c->kbuf.len, buf,
		               len);
	lora_free(buf);
	return rv;
}

static int user_create(struct apply_ctx *c, const Lora__UserChange *m,
                       const Lora__UserRecord *old)
{
	if (old)
		return m->if_exists
		           ? 0
		           : lora_errf(LORA_EEXIST, c->errmsg,
		                       "user '%s' already exists", m->name);
	Lora__UserRecord u = LORA__USER_RECORD__INIT;
	u.name = m->name;
	u.password_hash = m->password_hash;
	u.change_required = m->change_required;
	return user_store(c, &u);
}

/* GRANT / REVOKE on a copy of old's role list. */
static int user_role(struct apply_ctx *c, const Lora__UserChange *m,
                     const Lora__UserRecord *old)
{
	if (!role_known(m->role))
		return lora_errf(LORA_EINVAL, c->errmsg, "unknown role '%s'",
		                 m->role ? m->role : "");
	char *roles[4];
	size_t n = 0, had = 0;
	for (size_t i = 0; i < old->n_roles && n < 3; i++) {
		if (!strcmp(old->roles[i], m->role))
			had = 1;
		if (strcmp(old->roles[i], m->role) && role_known(old->roles[i]))
			roles[n++] = old->roles[i];
	}
	int grant = m->kind == LORA__USER_CHANGE__KIND__GRANT;
	if (grant == (int)had)
		return 0; /* nothing changes */
	if (grant)
		roles[n++] = m->role;
	Lora__UserRecord u = *old;
	u.roles = roles;
	u.n_roles = n;
	return user_store(c, &u);
}

int apply_user_change(struct apply_ctx *c, const Lora__UserChange *m)
{
	if (m->name == NULL || m->name[0] == '\0' ||
	    strlen(m->name) > STO_USER_NAME_BYTES_MAX)
		return lora_errf(LORA_EINVAL, c->errmsg, "bad user name");
	ucache_stage(c->s);
	Lora__UserRecord *old;
	int rv = user_load(c, m->name, &old);
	if (rv)
		return rv;
	if (old == NULL && m->kind != LORA__USER_CHANGE__KIND__CREATE) {
		if (m->kind == LORA__USER_CHANGE__KIND__DROP && m->if_exists)
			return 0;
		return lora_errf(LORA_ENOTFOUND, c->errmsg,
		                 "no user named '%s'", m->name);
	}
	switch (m->kind) {
	case LORA__USER_CHANGE__KIND__CREATE:
		rv = user_create(c, m, old);
		break;
	case LORA__USER_CHANGE__KIND__ALTER: {
		Lora__UserRecord u = *old;
		if (m->password_hash && m->password_hash[0])
			u.password_hash = m->password_hash;
		if (m->set_change_required)
			u.change_required = m->change_required;
		rv = user_store(c, &u);
		break;
	}
	case LORA__USER_CHANGE__KIND__DROP:
		rv = user_key(c, m->name);
		if (!rv)
			apply_del(c, STO_CF_META, c->kbuf.data, c->kbuf.len);
		break;
	case LORA__USER_CHANGE__KIND__GRANT:
	case LORA__USER_CHANGE__KIND__REVOKE:
		rv = user_role(c, m, old);
		break;
	default:
		rv = lora_errf(LORA_EINVAL, c->errmsg, "unknown user change");
	}
	if (old)
		lora__user_record__free_unpacked(old, &lora_pb_allocator);
	return rv;
}

int apply_auth_bootstrap(struct apply_ctx *c, const Lora__AuthBootstrap *m)
{
	static const char key[1] = {STO_META_SECRET};
	char *val;
	size_t vlen;
	ucache_stage(c->s);
	int rv = apply_get(c, STO_CF_META, key, 1, &val, &vlen);
	if (rv)
		return rv;
	if (val) {
		rocksdb_free(val);
		return 0; /* bootstrapped already: the first one wins */
	}
	if (m->cluster_secret.len < STO_SECRET_BYTES_MIN ||
	    m->cluster_secret.len > STO_SECRET_BYTES_MAX)
		return lora_errf(LORA_EINVAL, c->errmsg,
		                 "cluster secret of %zu bytes",
		                 m->cluster_secret.len);
	rv = apply_put(c, STO_CF_META, key, 1, m->cluster_secret.data,
	               m->cluster_secret.len);
	if (rv || m->admin_name == NULL || m->admin_name[0] == '\0')
		return rv;
	Lora__UserRecord *old;
	rv = user_load(c, m->admin_name, &old);
	if (rv || old) {
		if (old)
			lora__user_record__free_unpacked(old,
			                                 &lora_pb_allocator);
		return rv;
	}
	char *roles[1] = {"admin"};
	Lora__UserRecord u = LORA__USER_RECORD__INIT;
	u.name = m->admin_name;
	u.password_hash = m->password_hash;
	u.roles = roles;
	u.n_roles = 1;
	return user_store(c, &u);
}

/* ---- the user record cache -------------------------------------------
 *
 * Why: every request with credentials reads its user's record
 * (node/auth.c, on the node that takes it and again on the leader for a
 * passed-on write): a RocksDB point read and an unpack, 1-4 µs of CPU
 * per node per write at 64 clients (docs/benchmarks.md "User record
 * cache"). The cache keeps the packed records last read, one slot per
 * name hash (a colliding name evicts the one there), and hands out a
 * fresh unpacked copy each time, so callers free it as before.
 *
 * Never stale: `gen` counts the UserChange and AuthBootstrap mutations
 * staged; each bumps it before its batch's RocksDB write, so every slot
 * of an older generation stops serving at once, and sets `wait` to the
 * applied index at which that write is done (its entry, applied + 1:
 * apply runs one entry at a time under apply_mu and moves s->applied
 * only after the batch's write, or after the rejection's). A reader that
 * misses takes gen, and whether applied >= wait, BEFORE its RocksDB read,
 * and fills a slot, stamped with that gen, only if the last change was
 * written before that read and gen has not moved since: a record read
 * before a change (or while it is written) never becomes a copy that
 * outlives the change. A new
 * store (a snapshot install, a checkpoint swap) starts empty. No lock is
 * held across a RocksDB call.
 */
#define STO_UCACHE_SLOTS            64u  /* records kept, at most */
#define STO_UCACHE_RECORD_BYTES_MAX 512u /* a larger record is not kept */

struct sto_uslot {
	uint64_t gen; /* the cache's gen when filled; 0: empty */
	size_t len;   /* of rec */
	char name[STO_USER_NAME_BYTES_MAX + 1];
	uint8_t rec[STO_UCACHE_RECORD_BYTES_MAX]; /* packed Lora__UserRecord */
};

struct sto_ucache {
	pthread_mutex_t mu; /* guards all below */
	uint64_t gen;       /* ucache_next_gen: never 0, never reused */
	uint64_t wait;      /* applied index of the last change's write */
	uint64_t hits;      /* records served from a slot */
	struct sto_uslot slot[STO_UCACHE_SLOTS];
};

/* Generations come from one counter for the whole process, so that no
 * two stores (the one a snapshot install replaced and its successor)
 * ever hand out the same one: sto_user_gen's callers compare them. */
static _Atomic uint64_t ucache_gens;

static uint64_t ucache_next_gen(void)
{
	return atomic_fetch_add(&ucache_gens, 1) + 1;
}

uint64_t sto_user_gen(struct sto_store *s)
{
	struct sto_ucache *uc = s->ucache;
	if (uc == NULL)
		return 0;
	pthread_mutex_lock(&uc->mu);
	uint64_t g = atomic_load(&s->applied) >= uc->wait ? uc->gen : 0;
	pthread_mutex_unlock(&uc->mu);
	return g;
}

static struct sto_uslot *ucache_slot(struct sto_ucache *uc, const char *name,
                                     size_t nl)
{
	return &uc->slot[lora_hash32(name, nl) % STO_UCACHE_SLOTS];
}

/* name's record from the cache: 0 with *out (a fresh copy) on a hit;
 * else *out NULL and *gen the generation a read started now may fill
 * (0: it may not: a change is being written). */
static int ucache_find(struct sto_store *s, const char *name, size_t nl,
                       Lora__UserRecord **out, uint64_t *gen)
{
	struct sto_ucache *uc = s->ucache;
	*out = NULL;
	*gen = 0;
	if (uc == NULL)
		return 0;
	uint8_t rec[STO_UCACHE_RECORD_BYTES_MAX];
	size_t len = 0;
	int hit = 0;
	struct sto_uslot *sl = ucache_slot(uc, name, nl);
	pthread_mutex_lock(&uc->mu);
	if (sl->gen == uc->gen && !strcmp(sl->name, name)) {
		hit = 1;
		len = sl->len;
		memcpy(rec, sl->rec, len);
		uc->hits++;
	} else if (atomic_load(&s->applied) >= uc->wait) {
		*gen = uc->gen;
	}
	pthread_mutex_unlock(&uc->mu);
	if (!hit)
		return 0;
	*out = lora__user_record__unpack(&lora_pb_allocator, len, rec);
	return *out ? 0 : LORA_ENOMEM;
}

/* Keeps name's packed record, read after ucache_find gave gen, unless a
 * change was staged since. */
static void ucache_fill(struct sto_store *s, const char *name, size_t nl,
                        uint64_t gen, const char *rec, size_t len)
{
	struct sto_ucache *uc = s->ucache;
	if (uc == NULL || gen == 0 || len > STO_UCACHE_RECORD_BYTES_MAX)
		return;
	if (sto_testing_ucache_hook)
		sto_testing_ucache_hook(sto_testing_ucache_arg);
	struct sto_uslot *sl = ucache_slot(uc, name, nl);
	pthread_mutex_lock(&uc->mu);
	if (uc->gen == gen) {
		sl->gen = gen;
		sl->len = len;
		memcpy(sl->name, name, nl + 1);
		memcpy(sl->rec, rec, len);
	}
	pthread_mutex_unlock(&uc->mu);
}

/* Called by every apply that may change a user or the secret, before
 * its batch is written: see the top of this section. */
static void ucache_stage(struct sto_store *s)
{
	struct sto_ucache *uc = s->ucache;
	if (uc == NULL)
		return;
	pthread_mutex_lock(&uc->mu);
	uc->gen = ucache_next_gen();
	uc->wait = atomic_load(&s->applied) + 1;
	pthread_mutex_unlock(&uc->mu);
}

void sto_ucache_forget(struct sto_store *s)
{
	struct sto_ucache *uc = s->ucache;
	if (uc == NULL)
		return;
	pthread_mutex_lock(&uc->mu);
	uc->gen = ucache_next_gen();
	pthread_mutex_unlock(&uc->mu);
}

void sto_ucache_init(struct sto_store *s)
{
	struct sto_ucache *uc = lora_calloc(1, sizeof *uc);
	if (uc == NULL)
		return;
	pthread_mutex_init(&uc->mu, NULL);
	uc->gen = ucache_next_gen();
	s->ucache = uc;
}

void sto_ucache_free(struct sto_store *s)
{
	if (s->ucache == NULL)
		return;
	pthread_mutex_destroy(&s->ucache->mu);
	lora_free(s->ucache);
	s->ucache = NULL;
}

uint64_t sto_testing_ucache_hits(struct sto_store *s)
{
	if (s->ucache == NULL)
		return 0;
	pthread_mutex_lock(&s->ucache->mu);
	uint64_t n = s->ucache->hits;
	pthread_mutex_unlock(&s->ucache->mu);
	return n;
}

void sto_testing_set_ucache_hook(void (*fn)(void *), void *arg)
{
	sto_testing_ucache_arg = arg;
	sto_testing_ucache_hook = fn;
}

/* ---- reads (latest applied state) -------------------------------------- */

/* The record under key (nl + 1 bytes) read with ro: 0 with *out (and
 * the cache filled for generation gen), or as user_get. */
static int user_read(struct sto_store *s, const rocksdb_readoptions_t *ro,
                     const char *key, size_t nl, uint64_t gen,
                     Lora__UserRecord **out)
{
	char *val, *err = NULL;
	size_t vlen;
	val = rocksdb_get_cf(s->db, ro, s->cf[STO_CF_META], key, nl + 1, &vlen,
	                     &err);
	if (err && strstr(err, "incomplete")) { /* Status::Incomplete */
		rocksdb_free(err);
		return LORA_ETIMEOUT;
	}
	if (err)
		return sto_rocks_err(err, NULL, "read");
	if (val == NULL)
		return LORA_ENOTFOUND;
	*out = lora__user_record__unpack(&lora_pb_allocator, vlen,
	                                 (const uint8_t *)val);
	if (*out)
		ucache_fill(s, key + 1, nl, gen, val, vlen);
	rocksdb_free(val);
	return *out ? 0 : LORA_ECORRUPT;
}

/* sto_user_get (memory_only: sto_user_get_cached): 0, LORA_ENOTFOUND,
 * LORA_ECORRUPT, LORA_ETIMEOUT (memory_only and the disk needed), or
 * the read's error. A hit in the cache reads nothing. */
static int user_get(struct sto_store *s, int memory_only, const char *name,
                    Lora__UserRecord **out)
{
	*out = NULL;
	size_t nl = strlen(name);
	if (nl == 0 || nl > STO_USER_NAME_BYTES_MAX)
		return LORA_ENOTFOUND;
	uint64_t gen;
	int rv = ucache_find(s, name, nl, out, &gen);
	if (rv || *out)
		return rv;
	char key[STO_USER_NAME_BYTES_MAX + 2]; /* "U" name NUL */
	key[0] = STO_META_USER;
	memcpy(key + 1, name, nl + 1);
	if (!memory_only)
		return user_read(s, s->ro, key, nl, gen, out);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	if (ro == NULL)
		return LORA_ENOMEM;
	rocksdb_readoptions_set_read_tier(ro, 1); /* kBlockCacheTier */
	rv = user_read(s, ro, key, nl, gen, out);
	rocksdb_readoptions_destroy(ro);
	return rv;
}

int sto_user_get(struct sto_store *s, const char *name, Lora__UserRecord **out)
{
	return user_get(s, 0, name, out);
}

int sto_user_get_cached(struct sto_store *s, const char *name,
                        Lora__UserRecord **out)
{
	return user_get(s, 1, name, out);
}

int sto_users_list(struct sto_store *s, Lora__UserRecord ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(s->db, s->ro, s->cf[STO_CF_META]);
	if (it == NULL)
		return LORA_ENOMEM;
	static const char prefix[1] = {STO_META_USER};
	int rv = 0;
	size_t cap = 0;
	for (rocksdb_iter_seek(it, prefix, 1);
	     rv == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		if (klen < 1 || k[0] != STO_META_USER)
			break;
		if (*n == STO_USERS_MAX) {
			rv = LORA_ELIMIT;
			break;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			void *p = lora_realloc(*out, cap * sizeof **out);
			if (p == NULL) {
				rv = LORA_ENOMEM;
				break;
			}
			*out = p;
		}
		const char *v = rocksdb_iter_value(it, &vlen);
		(*out)[*n] = lora__user_record__unpack(&lora_pb_allocator, vlen,
		                                       (const uint8_t *)v);
		if ((*out)[*n] == NULL)
			rv = LORA_ECORRUPT;
		else
			(*n)++;
	}
	char *err = NULL;
	rocksdb_iter_get_error(it, &err);
	if (err) {
		rocksdb_free(err);
		rv = rv ? rv : LORA_EIO;
	}
	rocksdb_iter_destroy(it);
	if (rv) {
		sto_users_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rv;
}

void sto_users_free(Lora__UserRecord **us, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lora__user_record__free_unpacked(us[i], &lora_pb_allocator);
	lora_free(us);
}

int sto_auth_secret(struct sto_store *s, uint8_t *out, size_t *len)
{
	static const char key[1] = {STO_META_SECRET};
	char *val;
	size_t vlen;
	int rv = sto_get(s, s->ro, STO_CF_META, key, 1, &val, &vlen);
	if (rv)
		return rv;
	if (val == NULL)
		return LORA_ENOTFOUND;
	if (vlen < STO_SECRET_BYTES_MIN || vlen > STO_SECRET_BYTES_MAX)
		rv = LORA_ECORRUPT;
	else
		memcpy(out, val, vlen);
	*len = vlen;
	rocksdb_free(val);
	return rv;
}
