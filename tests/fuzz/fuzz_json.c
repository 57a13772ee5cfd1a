/*
 * fuzz_json: the schema-driven JSON decoder on arbitrary bytes taken as one record, with the
 * columns of a planned job (FUZZ_JSON_JOB: one column of every type), set up the way the
 * runtime does it (plan columns -> rn_json_col_t -> rn_json_dec_new).
 *
 * Property (as in tests/unit/test_proc_json.c): rn_json_decode returns RN_OK with every
 * column of its declared type, TEXT bytes readable and BOOLEANs true or false, or
 * RN_ERR_MALFORMED with a message. Decoding the same bytes again gives the same answer, and
 * a good record after any input decodes: nothing of one record leaks into the next. The input
 * is libFuzzer's exact buffer, so reading one byte past the record is an ASan report.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_json_job.h"
#include "ops/json.h"
#include "sql/plan.h"

#define MAX_COLS 16

static rn_json_dec_t *dec;
static rn_type_t types[MAX_COLS];
static size_t ncols;

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    rn_sql_src_t src = {"fuzz_json.sql", FUZZ_JSON_JOB, strlen(FUZZ_JSON_JOB)};
    rn_plan_t *plan = NULL;
    char errbuf[512];
    check(rn_plan_build(&src, &plan, errbuf, sizeof errbuf) == RN_OK);
    check(plan->ncols <= MAX_COLS);
    rn_json_col_t cols[MAX_COLS];
    ncols = plan->ncols;
    for (size_t i = 0; i < ncols; i++) {
        cols[i] = (rn_json_col_t){plan->cols[i].name, plan->cols[i].type};
        types[i] = plan->cols[i].type;
    }
    check(rn_json_dec_new(cols, ncols, &dec) == RN_OK); /* copies the names */
    rn_plan_free(plan);
    /* dec lives for the whole run; LeakSanitizer does not count a reachable global. */
    return 0;
}

/* FNV-1a over what a decoded row says, so two decodes compare without keeping the first. */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t row_digest(const rn_value_t *row)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < ncols; i++) {
        const rn_value_t *v = &row[i];
        check(v->type == types[i]);
        h = mix(h, &v->is_null, 1);
        if (v->is_null)
            continue;
        switch (types[i]) {
        case RN_T_TEXT:
            check(v->len == 0 || v->u.s != NULL);
            h = mix(h, &v->len, sizeof v->len);
            h = mix(h, v->u.s, v->len); /* ASan checks every byte is in live memory */
            break;
        case RN_T_BOOLEAN: {
            bool b = v->u.b; /* UBSan's bool check sees a value other than 0 or 1 */
            h = mix(h, &b, 1);
            break;
        }
        case RN_T_DOUBLE:
            h = mix(h, &v->u.d, sizeof v->u.d);
            break;
        default:
            h = mix(h, &v->u.i, sizeof v->u.i);
            break;
        }
    }
    return h;
}

static rn_err_t decode(const char *json, size_t len, uint64_t *digest, char *errbuf,
                       size_t errlen)
{
    rn_value_t row[MAX_COLS];
    memset(row, 0, sizeof row);
    errbuf[0] = '\0';
    rn_err_t err = rn_json_decode(dec, json, len, row, errbuf, errlen);
    if (err == RN_OK) {
        *digest = row_digest(row);
    } else {
        check(err == RN_ERR_MALFORMED);
        check(errbuf[0] != '\0' && memchr(errbuf, '\0', errlen) != NULL);
        *digest = 0;
    }
    return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = size ? (const char *)data : "";
    char first_err[256], again_err[256];
    uint64_t first, again;
    rn_err_t err = decode(json, size, &first, first_err, sizeof first_err);
    check(decode(json, size, &again, again_err, sizeof again_err) == err);
    check(first == again && strcmp(first_err, again_err) == 0);

    const char *good = fuzz_json_seeds[0];
    check(decode(good, strlen(good), &again, again_err, sizeof again_err) == RN_OK);
    return 0;
}
