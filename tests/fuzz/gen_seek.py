#!/usr/bin/env python3
"""Random statements shaped for fuzz_seek, one file each.

Usage: gen_seek.py DIR COUNT SEED
then   <build>/tests/fuzz/fuzz_seek_replay DIR   (aborts at a difference)
or copy DIR's files into <build>/tests/fuzz/work/seek for libFuzzer.

Raw libFuzzer mutations rarely make a statement whose seek finds rows;
these do: equality, IN, range, prefix, text and point predicates on the
fixture's labels and keys (fuzz_seek.c), values from earlier clauses
(UNWIND, WITH, an earlier MATCH), writes before the seek (the statement
overlay), subqueries, MERGE, label expressions and relationship seeks.
"""
import os
import random
import sys

VALS = [
    "1", "1.0", "2", "2.0", "2.5", "3", "3.0", "0", "-0.0", "0.0", "-1",
    "0.0 / 0.0", "1.5", "4.5", "7", "1e300", "-1e300", "1e-300",
    "1e308 * 10", "-1e308 * 10", "9007199254740993", "9007199254740992.0",
    "9007199254740992", "9223372036854775807", "9223372036854775807.0",
    "-9223372036854775807 - 1", "-9223372036854775808.0",
    "'x'", "'1'", "''", "'a'", "'ab'", "'abc'", "'b'", "'bb'", "'B'",
    "'xyz'", "'abz'", "'abq'", "'aaa'", "'abab'", "true", "false", "null",
    "[1, 2]", "[1.0, 2]", "[1]", "[]", "['x', 'y']", "[1, null]",
    "date('2020-01-02')", "localtime('12:00')", "duration('P1D')",
    "datetime('2020-01-02T03:04:05Z')", "point({x: 1, y: 2})",
    "$i", "$f", "$z", "$nan", "$big", "$s", "$ab", "$n", "$l", "-$i",
    "toInteger('1')", "toFloat(1)", "1 + 0.0", "9007199254740992 + 1",
    "[1, 2][0]",
]
NEEDLES = ["'a'", "'ab'", "'abc'", "''", "'b'", "'x'", "'xy'", "'A'",
           "'aa'", "'bab'", "'code'", "'Ün'", "'aÿ'", "'ab '", "'é'", "'bc'",
           "'yz'", "$s", "$ab", "null", "1"]
LABELS = ["P", "P", "P", "Q", "Q", "R", "P:Q", "E", "P:R"]
KEYS = ["k", "k", "k", "k", "s", "s", "p", "w"]
CMP = ["=", "=", "<>", "<", "<=", ">", ">="]
CENTRES = ["point({x: 1, y: 2})", "point({x: 0, y: 0})",
           "point({longitude: 10, latitude: 50})"]

R = random.Random()


def val(env):
    """a value: a literal or parameter, or one of the variables in env"""
    if env and R.random() < 0.3:
        v = R.choice(env)
        return v if R.random() < 0.6 else v + "." + R.choice(["k", "s"])
    return R.choice(VALS)


def lst(env):
    r = R.random()
    if r < 0.1:
        return "$l"
    if r < 0.15:
        return "null"
    return "[" + ", ".join(val(env) for _ in range(R.randint(0, 4))) + "]"


def pred(a, env, depth=0):
    """a predicate on variable a, mostly one a seek can serve"""
    r = R.random()
    p = a + "." + R.choice(KEYS)
    if depth < 2 and r < 0.15:
        op = R.choice([" AND ", " OR ", " XOR "])
        return "(" + pred(a, env, depth + 1) + op + pred(a, env, depth + 1) + ")"
    if depth < 2 and r < 0.2:
        return "NOT " + pred(a, env, depth + 1)
    if r < 0.45:
        return "%s %s %s" % (p, R.choice(CMP), val(env))
    if r < 0.55:
        return "%s %s %s" % (val(env), R.choice(CMP), p)
    if r < 0.65:
        return p + " IN " + lst(env)
    if r < 0.73:
        op = R.choice(["STARTS WITH", "ENDS WITH", "CONTAINS"])
        return "%s %s %s" % (p, op, R.choice(NEEDLES))
    if r < 0.83:
        return "%s %s %s %s %s" % (val(env), R.choice(["<", "<="]), p,
                                   R.choice(["<", "<="]), val(env))
    if r < 0.9:
        return "%s %s %s AND %s %s %s" % (p, R.choice([">", ">="]), val(env),
                                          p, R.choice(["<", "<="]), val(env))
    if r < 0.95:
        return p + " IS " + R.choice(["NULL", "NOT NULL"])
    return "point.distance(%s.p, %s) %s %s" % (
        a, R.choice(CENTRES), R.choice(["<", "<="]),
        R.choice(["1", "0.5", "10", "1000000", "$f"]))


def node(a, env):
    label = R.choice(LABELS)
    if R.random() < 0.3:
        keys = R.sample(["k", "s"], R.randint(1, 2))
        props = ", ".join("%s: %s" % (k, val(env)) for k in keys)
        return "(%s:%s {%s})" % (a, label, props)
    return "(%s:%s)" % (a, label)


def write(env):
    """a write clause (and the variable it leaves, or None)"""
    r = R.random()
    b = "w%d" % R.randint(0, 9)
    if r < 0.25:
        return "CREATE (%s:%s {k: %s, s: %s})" % (
            b, R.choice(LABELS), val(env), R.choice(NEEDLES)), b
    m = "MATCH %s WHERE %s " % (node(b, env), pred(b, env))
    if r < 0.45:
        return m + "SET %s.%s = %s" % (b, R.choice(["k", "s"]), val(env)), b
    if r < 0.55:
        return m + "REMOVE %s.%s" % (b, R.choice(["k", "s"])), b
    if r < 0.65:
        return m + "SET %s:%s" % (b, R.choice(["P", "Q", "R"])), b
    if r < 0.72:
        return m + "REMOVE %s:%s" % (b, R.choice(["P", "Q", "R"])), b
    if r < 0.8:
        return m + "DETACH DELETE " + b, None
    rel = "MATCH (%s)-[rr:T]->() WHERE rr.w %s %s " % (b, R.choice(CMP),
                                                     val([]))
    if r < 0.84:
        return rel + "SET rr.w = " + val([]), b
    if r < 0.86:
        return rel + "DELETE rr", b
    if r < 0.88:
        return m + "CREATE (%s)-[:T {w: %s}]->(%s)" % (b, val(env), b), b
    return "MERGE (%s:%s {k: %s})" % (b, R.choice(["P", "Q", "R"]),
                                      val(env)), b


def writes(parts, env):
    """one or two write clauses, each followed by a WITH"""
    for _ in range(1 if R.random() < 0.7 else 2):
        w, b = write(env)
        parts.append(w)
        if b and b not in env and R.random() < 0.5:
            env.append(b)
        elif "c" not in env:
            parts.append("WITH count(*) AS c" +
                         "".join(", " + v for v in env))
            env.append("c")
            continue
        parts.append("WITH " + ", ".join(env))


def rel_match(env):
    rel = R.choice(["-[r:%s]->", "<-[r:%s]-", "-[r:%s]-",
                    "-[r:%s {w: " + val(env) + "}]->"])
    pat = "(a)" + rel % R.choice(["T", "T", "U", "T|U"]) + "(b)"
    r = R.random()
    if r < 0.3:
        pat = R.choice(["(x)-[:T]->", "(x)<-[:T]-", "(x)--"]) + pat
    elif r < 0.5:
        pat += R.choice(["-[:T]->(x)", "<-[:U]-(x)", "--(x)"])
    return "MATCH %s WHERE %s" % (pat, pred("r", env))


def seek_clause(env):
    """the clause that seeks, and what it may return"""
    r = R.random()
    if r < 0.06:
        head = "WITH %s " % ", ".join(env) if env else ""
        return ("CALL { %sMATCH %s WHERE %s RETURN a }" %
                (head, node("a", env), pred("a", env)), ["a", "a.k"])
    if r < 0.12:
        sub = R.choice(["EXISTS", "NOT EXISTS", "1 <= COUNT"])
        inner = env + ["x"]
        return ("MATCH (x:%s) WHERE %s { MATCH %s WHERE %s }" %
                (R.choice(LABELS), sub, node("a", inner), pred("a", inner)),
                ["x", "x.k"])
    if r < 0.16:
        m = "m%d" % len(env)
        clause = "UNWIND %s AS %s MERGE (a:%s {k: %s})" % (
            lst(env), m, R.choice(["P", "Q", "R"]), m)
        env.append(m)
        return clause, ["a", "a.k", "a.s"]
    if r < 0.2:
        inner = env + ["x"]
        return ("MATCH (x:%s) WITH x, [(a:%s)-->() WHERE %s | a.s] AS l" %
                (R.choice(LABELS), R.choice(LABELS), pred("a", inner)),
                ["x.k", "l"])
    if r < 0.26:
        lx = R.choice(["P|Q", "!P", "P&!Q", "%", "Q|R"])
        return ("MATCH (a:%s) WHERE %s" % (lx, pred("a", env)),
                ["a", "a.k", "labels(a)"])
    if r < 0.4:
        return rel_match(env), ["a", "r", "b", "r.w"]
    m = "%s %s" % ("OPTIONAL MATCH" if R.random() < 0.1 else "MATCH",
                   node("a", env))
    if R.random() < 0.2:
        m += "-[r:%s]->%s" % (R.choice(["T", "U"]), node("b", env))
    if R.random() < 0.85:
        m += " WHERE " + pred("a", env)
    return m, ["a", "a.k", "a.s", "id(a)"]


def statement():
    parts, env = [], []
    if R.random() < 0.35:
        writes(parts, env)
    r = R.random()
    if r < 0.25:
        parts.append("UNWIND %s AS v" % lst(env))
        env.append("v")
    elif r < 0.35:
        parts.append("WITH %s AS v%s" % (val(env),
                                         "".join(", " + x for x in env)))
        env.append("v")
    elif r < 0.4:
        parts.append("UNWIND %s AS v UNWIND %s AS u" % (lst(env), lst(env)))
        env += ["v", "u"]
    elif r < 0.5 and "x" not in env:
        parts.append("MATCH " + node("x", env))
        env.append("x")
    clause, ret = seek_clause(env)
    parts.append(clause)
    items = ret + [v for v in env if v not in ret]
    items = R.sample(items, R.randint(1, min(3, len(items))))
    r = R.random()
    if r < 0.1:
        parts.append("RETURN count(*)")
    elif r < 0.15:
        parts.append("RETURN DISTINCT " + ", ".join(items))
    elif r < 0.2:
        parts.append("RETURN collect(%s)" % items[0])
    else:
        parts.append("RETURN " + ", ".join(items))
    return " ".join(parts)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: gen_seek.py DIR COUNT SEED")
    out, count = sys.argv[1], int(sys.argv[2])
    R.seed(int(sys.argv[3]))
    os.makedirs(out, exist_ok=True)
    for i in range(count):
        with open(os.path.join(out, "g%06d" % i), "w") as f:
            f.write(statement())


if __name__ == "__main__":
    main()
