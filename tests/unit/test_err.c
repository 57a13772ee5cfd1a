/*
 * err.c + runnel.proto: the wire half of rn_err_t and the ErrorCode enum of the protocol are
 * one list under two spellings. A client decodes Response.error straight into rn_err_t, so a
 * number that drifts between them makes one side report the wrong error.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "runnel.pb-c.h"

#define PROTO_PREFIX "ERR_"

struct local_err {
    int value;
    const char *name;
};

static const struct local_err local_errs[] = {
#define LOCAL_ROW_(name, value, retriable, msg) {value, #name},
    RN_ERR_LIST(LOCAL_ROW_)
#undef LOCAL_ROW_
};
#define N_LOCAL (sizeof local_errs / sizeof local_errs[0])

/* Every proto ErrorCode value is an rn_err_t with the same number and the same name. */
static void test_proto_enum_matches_rn_err(void **state)
{
    (void)state;
    const ProtobufCEnumDescriptor *d = &runnel__error_code__descriptor;
    assert_true(d->n_values > 0);
    for (unsigned i = 0; i < d->n_values; i++) {
        const ProtobufCEnumValue *v = &d->values[i];
        if (strncmp(v->name, PROTO_PREFIX, strlen(PROTO_PREFIX)) != 0)
            fail_msg("proto ErrorCode %s = %d lacks the %s prefix", v->name, v->value,
                     PROTO_PREFIX);
        const char *bare = v->name + strlen(PROTO_PREFIX);
        if (v->value < 0)
            fail_msg("proto ErrorCode %s = %d is negative; negative codes are local-only",
                     v->name, v->value);
        if (!rn_err_known(v->value))
            fail_msg("proto ErrorCode %s = %d has no rn_err_t with that number", v->name,
                     v->value);
        const char *local = rn_err_name((rn_err_t)v->value);
        if (strcmp(local, bare) != 0)
            fail_msg("proto ErrorCode %s = %d, but rn_err_t %d is RN_ERR_%s", v->name,
                     v->value, v->value, local);
    }
}

/* Every rn_err_t >= 0 (the ones that travel in responses) exists in the proto enum. */
static void test_every_wire_rn_err_in_proto(void **state)
{
    (void)state;
    const ProtobufCEnumDescriptor *d = &runnel__error_code__descriptor;
    size_t wire = 0;
    for (size_t i = 0; i < N_LOCAL; i++) {
        const struct local_err *e = &local_errs[i];
        if (e->value < 0)
            continue;
        wire++;
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, e->value);
        if (!v)
            fail_msg("RN_ERR_%s = %d is a wire error but missing from proto ErrorCode", e->name,
                     e->value);
        if (strncmp(v->name, PROTO_PREFIX, strlen(PROTO_PREFIX)) != 0 ||
            strcmp(v->name + strlen(PROTO_PREFIX), e->name) != 0)
            fail_msg("RN_ERR_%s = %d, but proto ErrorCode %d is %s", e->name, e->value, e->value,
                     v->name);
        const ProtobufCEnumValue *by_name =
            protobuf_c_enum_descriptor_get_value_by_name(d, v->name);
        if (!by_name || by_name->value != e->value)
            fail_msg("proto ErrorCode %s resolves by name to a different number", v->name);
    }
    if (wire != d->n_values)
        fail_msg("%zu wire rn_err_t values but %u proto ErrorCode values", wire, d->n_values);
}

/* Names and numbers are unique, so the name<->number mapping is a bijection. */
static void test_rn_err_unique(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_LOCAL; i++) {
        for (size_t j = i + 1; j < N_LOCAL; j++) {
            if (local_errs[i].value == local_errs[j].value)
                fail_msg("RN_ERR_%s and RN_ERR_%s share the number %d", local_errs[i].name,
                         local_errs[j].name, local_errs[i].value);
            if (strcmp(local_errs[i].name, local_errs[j].name) == 0)
                fail_msg("RN_ERR_%s is listed twice", local_errs[i].name);
        }
    }
}

/* rn_err_str / rn_err_name never return NULL, and known codes have real text. */
static void test_str_never_null(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_LOCAL; i++) {
        rn_err_t e = (rn_err_t)local_errs[i].value;
        const char *s = rn_err_str(e);
        if (!s || !*s)
            fail_msg("rn_err_str(RN_ERR_%s) is NULL or empty", local_errs[i].name);
        const char *n = rn_err_name(e);
        if (!n || strcmp(n, local_errs[i].name) != 0)
            fail_msg("rn_err_name(%d) = %s, want %s", local_errs[i].value, n ? n : "(null)",
                     local_errs[i].name);
        assert_true(rn_err_known(local_errs[i].value));
    }
    const int unknown[] = {33, 100, 1000, -22, -1000, INT_MAX, INT_MIN, INT_MIN + 1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        rn_err_t e = (rn_err_t)unknown[i];
        if (rn_err_known(unknown[i]))
            continue; /* the enum grew to cover it: nothing to check here */
        const char *s = rn_err_str(e);
        if (!s || !*s)
            fail_msg("rn_err_str(%d) (unknown code) is NULL or empty", unknown[i]);
        if (!rn_err_name(e))
            fail_msg("rn_err_name(%d) (unknown code) is NULL", unknown[i]);
        if (rn_err_retriable(e))
            fail_msg("unknown code %d reported retriable", unknown[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_enum_matches_rn_err),
        cmocka_unit_test(test_every_wire_rn_err_in_proto),
        cmocka_unit_test(test_rn_err_unique),
        cmocka_unit_test(test_str_never_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
