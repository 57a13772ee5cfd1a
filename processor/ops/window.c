#include "ops/window.h"

#include <string.h>

size_t rn_win_max_per_event(const rn_win_spec_t *spec)
{
    if (spec->kind == RN_WIN_HOP)
        return (size_t)((spec->size_ms + spec->slide_ms - 1) / spec->slide_ms);
    return 1;
}

size_t rn_win_assign(const rn_win_spec_t *spec, int64_t ts, int64_t *starts)
{
    if (spec->kind == RN_WIN_TUMBLE) {
        starts[0] = rn_win_floor(ts, spec->size_ms) * spec->size_ms;
        return 1;
    }
    /* HOP: the latest window starting at or before ts, then earlier ones while they still
     * contain ts. */
    int64_t last = rn_win_floor(ts, spec->slide_ms) * spec->slide_ms;
    size_t n = 0;
    int64_t first = last;
    while (first - spec->slide_ms > ts - spec->size_ms)
        first -= spec->slide_ms;
    for (int64_t s = first; s <= last; s += spec->slide_ms)
        starts[n++] = s;
    return n;
}

void rn_win_session_plan(const rn_win_session_t *s, size_t n, int64_t ts, int64_t gap,
                         rn_win_merge_t *m)
{
    int64_t start = ts, end = ts + gap;
    /* Sessions are disjoint and sorted, so the ones touching [start, end] are contiguous. */
    size_t i = 0;
    while (i < n && s[i].end < start)
        i++;
    m->first = i;
    m->created = true;
    while (i < n && s[i].start <= end) {
        if (s[i].start < start)
            start = s[i].start;
        if (s[i].end > end)
            end = s[i].end;
        m->created = false;
        m->last = i;
        i++;
    }
    if (m->created)
        m->last = m->first;
    m->start = start;
    m->end = end;
}

size_t rn_win_session_apply(rn_win_session_t *s, size_t n, const rn_win_merge_t *m)
{
    if (m->created) {
        memmove(&s[m->first + 1], &s[m->first], (n - m->first) * sizeof *s);
        s[m->first].start = m->start;
        s[m->first].end = m->end;
        return n + 1;
    }
    s[m->first].start = m->start;
    s[m->first].end = m->end;
    size_t removed = m->last - m->first;
    memmove(&s[m->first + 1], &s[m->last + 1], (n - m->last - 1) * sizeof *s);
    return n - removed;
}
