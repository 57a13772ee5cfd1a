/*
 * ast.h - the syntax tree of a job file, exactly as written (names unresolved, types
 * unchecked). Everything lives in the arena given to rn_sql_parse.
 *
 *   job      := { source | sink }
 *   source   := CREATE SOURCE name '(' col type {',' col type} ')' FROM TOPIC 'topic'
 *               FORMAT JSON [WATERMARK FOR col AS col ['-' INTERVAL 'n' unit]]
 *               [WITH '(' key '=' value {',' key '=' value} ')'] ';'
 *   sink     := CREATE SINK name INTO (SQLITE 'path' | POSTGRES 'conninfo' | TOPIC 'topic'
 *               | STDOUT) [TABLE t] PRIMARY KEY '(' col {',' col} ')' AS select ';'
 *   select   := SELECT item {',' item} FROM from [WHERE expr] [GROUP BY expr {',' expr}]
 *               [HAVING expr] [EMIT ON WINDOW CLOSE | EMIT EVERY INTERVAL 'n' unit]
 *   from     := TUMBLE '(' src ',' col ',' interval ')' | HOP '(' src ',' col ',' slide ','
 *               size ')' | SESSION '(' src ',' col ',' gap ')' | src
 *               (Flink's TABLE src and DESCRIPTOR(col) spellings are accepted too)
 */
#ifndef RN_SQL_AST_H
#define RN_SQL_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ops/expr.h"
#include "ops/window.h"
#include "sql/diag.h"
#include "util/arena.h"

typedef enum rn_ast_kind {
    RN_AST_INT, RN_AST_FLOAT, RN_AST_STRING, RN_AST_BOOL, RN_AST_NULL,
    RN_AST_INTERVAL, /* INTERVAL 'n' unit: ival milliseconds */
    RN_AST_COLUMN,   /* [qual.]name */
    RN_AST_UNARY,    /* op NOT / NEG, args[0] */
    RN_AST_BINARY,   /* args[0] op args[1] */
    RN_AST_IN,       /* args[0] [NOT] IN (args[1..]) */
    RN_AST_ISNULL,   /* args[0] IS [NOT] NULL */
    RN_AST_CALL,     /* name([DISTINCT] args | *) */
} rn_ast_kind_t;

/*
 * How deep an expression may nest, counting both the parser's recursion (parentheses, NOT,
 * unary minus) and the tree it builds (a + a + … is one loop in the parser but a chain of
 * nodes). The planner and the evaluator walk the tree recursively, so without a bound a job
 * file of a few KB overflows the stack. SQLite's default limit.
 */
#define RN_SQL_MAX_EXPR_DEPTH 1000

typedef struct rn_ast_expr {
    rn_ast_kind_t kind;
    int line, col;
    int depth;         /* nodes on the longest path down from here: 1 for a leaf */
    rn_op_t op;
    bool negated;
    bool distinct;
    bool star;
    bool bval;
    const char *name;  /* COLUMN, CALL: lower-case (or as quoted) */
    const char *qual;  /* COLUMN: optional qualifier before '.' */
    const char *str;   /* STRING */
    size_t str_len;
    int64_t ival;
    double dval;
    struct rn_ast_expr **args;
    size_t nargs;
} rn_ast_expr_t;

typedef struct rn_ast_ident {
    const char *name;
    int line, col;
} rn_ast_ident_t;

typedef struct rn_ast_coldef {
    rn_ast_ident_t id;
    rn_type_t type;
} rn_ast_coldef_t;

typedef struct rn_ast_opt {
    rn_ast_ident_t key;   /* key as written ('idle.timeout.ms') */
    const char *value;
    int vline, vcol;
} rn_ast_opt_t;

typedef struct rn_ast_source {
    rn_ast_ident_t id;
    rn_ast_coldef_t *cols;
    size_t ncols;
    const char *topic;
    bool has_watermark;
    rn_ast_ident_t wm_col;
    int64_t wm_delay_ms;
    rn_ast_opt_t *opts;
    size_t nopts;
} rn_ast_source_t;

typedef enum rn_sink_kind {
    RN_SINK_SQLITE, RN_SINK_POSTGRES, RN_SINK_TOPIC, RN_SINK_STDOUT,
} rn_sink_kind_t;

typedef struct rn_ast_item {
    rn_ast_expr_t *expr;
    rn_ast_ident_t alias;  /* name NULL when none */
} rn_ast_item_t;

typedef enum rn_emit_kind {
    RN_EMIT_DEFAULT,   /* no EMIT clause */
    RN_EMIT_ON_CLOSE,
    RN_EMIT_EVERY,
} rn_emit_kind_t;

typedef struct rn_ast_from {
    rn_win_kind_t kind;
    rn_ast_ident_t source;
    rn_ast_ident_t time_col;
    int64_t size_ms, slide_ms, gap_ms;
    int line, col;
} rn_ast_from_t;

typedef struct rn_ast_select {
    int line, col;
    rn_ast_item_t *items;
    size_t nitems;
    rn_ast_from_t from;
    rn_ast_expr_t *where;
    rn_ast_expr_t **group_by;
    size_t ngroup;
    int group_line, group_col;
    rn_ast_expr_t *having;
    rn_emit_kind_t emit;
    int64_t every_ms;
    int emit_line, emit_col;
} rn_ast_select_t;

typedef struct rn_ast_sink {
    rn_ast_ident_t id;
    rn_sink_kind_t kind;
    const char *target;      /* path, conninfo or topic; NULL for STDOUT */
    rn_ast_ident_t table;    /* name NULL when no TABLE clause */
    rn_ast_ident_t *pk;
    size_t npk;
    int pk_line, pk_col;
    rn_ast_select_t select;
} rn_ast_sink_t;

typedef struct rn_ast_job {
    rn_ast_source_t **sources;
    size_t nsources;
    rn_ast_sink_t **sinks;
    size_t nsinks;
} rn_ast_job_t;

/*
 * Parses a whole job file. RN_ERR_MALFORMED with "FILE:LINE:COL: message" plus the source
 * line and a caret in errbuf; RN_ERR_NOMEM. The tree lives in arena.
 */
rn_err_t rn_sql_parse(const rn_sql_src_t *src, rn_arena_t *arena, rn_ast_job_t **out,
                      char *errbuf, size_t errlen);

#endif
