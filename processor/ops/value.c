#include "ops/value.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const type_names[] = {"NULL", "TEXT", "BIGINT", "DOUBLE", "BOOLEAN",
                                         "TIMESTAMP"};

const char *rn_type_name(rn_type_t t)
{
    if ((unsigned)t < sizeof type_names / sizeof type_names[0])
        return type_names[t];
    return "?";
}

int rn_type_parse(const char *s, size_t len)
{
    for (int t = RN_T_TEXT; t <= RN_T_TIMESTAMP; t++) {
        if (strlen(type_names[t]) == len && strncasecmp(type_names[t], s, len) == 0)
            return t;
    }
    return -1;
}

/* Howard Hinnant's days_from_civil / civil_from_days: exact for the proleptic Gregorian
 * calendar over the whole int64 range we care about. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int rn_ts_format(int64_t ms, char *out, size_t outlen)
{
    int64_t days = ms / 86400000, rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int h = (int)(rem / 3600000), mi = (int)(rem / 60000 % 60), s = (int)(rem / 1000 % 60);
    return snprintf(out, outlen, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d, h,
                    mi, s, (int)(rem % 1000));
}

static bool digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
    if (at + n > len)
        return false;
    int v = 0;
    for (size_t i = at; i < at + n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool rn_ts_parse(const char *s, size_t len, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (!digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' || !digits(s, len, 5, 2, &mo) ||
        s[7] != '-' || !digits(s, len, 8, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    size_t i = 10;
    int64_t frac_ms = 0, offset_min = 0;
    if (i < len) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
            return false;
        if (!digits(s, len, i + 1, 2, &h) || i + 3 >= len || s[i + 3] != ':' ||
            !digits(s, len, i + 4, 2, &mi))
            return false;
        i += 6;
        if (i < len && s[i] == ':') {
            if (!digits(s, len, i + 1, 2, &sec))
                return false;
            i += 3;
        }
        if (h > 23 || mi > 59 || sec > 60)
            return false;
        if (i < len && (s[i] == '.' || s[i] == ',')) {
            i++;
            int nd = 0;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                if (nd < 3)
                    frac_ms = frac_ms * 10 + (s[i] - '0');
                nd++;
                i++;
            }
            if (nd == 0)
                return false;
            for (; nd < 3; nd++)
                frac_ms *= 10;
        }
        if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
            i++;
        } else if (i < len && (s[i] == '+' || s[i] == '-')) {
            int oh, om = 0;
            int sign = s[i] == '-' ? -1 : 1;
            if (!digits(s, len, i + 1, 2, &oh))
                return false;
            i += 3;
            if (i < len && s[i] == ':')
                i++;
            if (i < len) {
                if (!digits(s, len, i, 2, &om))
                    return false;
                i += 2;
            }
            offset_min = sign * (oh * 60 + om);
        }
        if (i != len)
            return false;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *ms = ((days * 24 + h) * 60 + mi - offset_min) * 60000 + (int64_t)sec * 1000 + frac_ms;
    return true;
}

static bool is_number(uint8_t t)
{
    return t == RN_T_BIGINT || t == RN_T_DOUBLE || t == RN_T_TIMESTAMP;
}

int rn_val_cmp(const rn_value_t *a, const rn_value_t *b)
{
    if (a->type == RN_T_TEXT && b->type == RN_T_TEXT) {
        uint32_t n = a->len < b->len ? a->len : b->len;
        int c = n ? memcmp(a->u.s, b->u.s, n) : 0;
        if (c)
            return c < 0 ? -1 : 1;
        return a->len < b->len ? -1 : a->len > b->len;
    }
    if (a->type == RN_T_BOOLEAN && b->type == RN_T_BOOLEAN)
        return (int)a->u.b - (int)b->u.b;
    if (is_number(a->type) && is_number(b->type)) {
        if (a->type != RN_T_DOUBLE && b->type != RN_T_DOUBLE)
            return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
        double x = a->type == RN_T_DOUBLE ? a->u.d : (double)a->u.i;
        double y = b->type == RN_T_DOUBLE ? b->u.d : (double)b->u.i;
        return x < y ? -1 : x > y;
    }
    return (int)a->type - (int)b->type;
}

bool rn_val_equal(const rn_value_t *a, const rn_value_t *b)
{
    if (a->is_null || b->is_null)
        return a->is_null && b->is_null;
    return rn_val_cmp(a, b) == 0;
}
